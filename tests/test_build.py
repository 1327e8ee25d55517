"""The two editions: committed student notebooks are up to date and hold no solutions."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402

SOURCES = build_notebooks.sources()


def test_there_are_lessons():
    assert SOURCES, "no notebooks/NN_name.py sources found"


def test_committed_student_notebooks_match_their_sources():
    stale = build_notebooks.build(check=True)
    assert not stale, f"rebuild with `python scripts/build_notebooks.py`: {stale}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_edition_hides_every_solution(src):
    text = src.read_text(encoding="utf-8")
    nb = json.loads(src.with_suffix(".ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "### BEGIN SOLUTION" not in code and "### END SOLUTION" not in code
    blocks = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S)
    assert code.count(build_notebooks.STUDENT_STUB) == len(blocks)
    for body in blocks:
        for line in body.strip().splitlines():
            if len(line.strip()) > 25:  # a distinctive solution line must not leak
                assert line.strip() not in code, f"solution line leaked: {line.strip()}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebooks_have_no_outputs_and_follow_the_format(src):
    nb = json.loads(src.with_suffix(".ipynb").read_text(encoding="utf-8"))
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code_cells)
    sources = ["".join(c["source"]) for c in code_cells]
    assert "start_lesson(seed=" in sources[0], "the first code cell calls start_lesson(seed=...)"
    for i, s in enumerate(sources):  # every exercise is followed by its check cell
        if build_notebooks.STUDENT_STUB in s:
            assert re.search(r"check\(\"\d\d\.\d+\"", sources[i + 1]), sources[i + 1]
        if "ipywidgets" in s or "_explorer(" in s or "_form(" in s:
            assert s.startswith("# NBVAL_IGNORE_OUTPUT"), f"widget cell not marked:\n{s}"


def test_solution_markers_become_a_stub_at_the_same_indentation():
    text = ("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n"
            "if True:\n        ### BEGIN SOLUTION\n        y = 1\n        ### END SOLUTION\n")
    student = build_notebooks.student_text(text)
    assert f"    {build_notebooks.STUDENT_STUB}\n" in student
    assert f"        {build_notebooks.STUDENT_STUB}\n" in student
    assert "return x" not in student and "y = 1" not in student
    solution = build_notebooks.solution_text(text)
    assert "return x" in solution and "SOLUTION" not in solution


def test_unbalanced_markers_are_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        build_notebooks.student_text("### BEGIN SOLUTION\nx = 1\n")
