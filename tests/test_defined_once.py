"""Each idea of the causal-LM layer is defined once: no second ``def`` of it anywhere in
course_utils, and the names lessons use elsewhere are that one function, imported.

A second ``def left_pad`` (or ``_left_pad``, ``_context_length``, ...) in another module is how
two versions with different edge behaviour came about; this test fails on it. The grader's
exercise references import the one implementation (its deliberately wrong answers may write
the formulas out: that is what they are for).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"
ONCE = ("left_pad", "position_ids", "context_length", "pad_token_id", "pad_id",
        "load_model", "random_tiny", "generate_batch", "generate_ids", "generate_text",
        "label_token_ids", "next_token_logits", "perplexity", "size_on_disk", "token_logprobs",
        "windows", "cut_at_stop", "shared_prompt_cache", "sample_next",
        "cpu_training_arguments", "training_arguments", "check_config")
# The position ids of a padded row: attention_mask.cumsum(-1) - 1 (in any spelling).
POSITION_FORMULA = re.compile(r"cumsum\(\s*(?:dim\s*=\s*)?-1\s*\)\s*-\s*1\b")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _definitions() -> dict[str, set[str]]:
    """Every function or class name (leading underscores dropped) -> the modules defining it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[node.name.lstrip("_")].add(path.relative_to(PACKAGE).as_posix())
    return found


@pytest.mark.parametrize("name", ONCE)
def test_each_idea_is_defined_in_one_module(name):
    where = sorted(_definitions().get(name, ()))
    assert len(where) <= 1, f"{name} is defined in {len(where)} modules: {where}; keep one " \
                            "and import it in the others"


def test_the_activation_table_is_defined_once():
    owners = [p.relative_to(PACKAGE).as_posix() for p in _modules()
              if re.search(r"^_?ACTIVATIONS\b[^=\n]*=", p.read_text(encoding="utf-8"), re.M)]
    assert owners == ["model_config.py"]


def test_the_position_id_formula_is_written_once():
    owners = [p.relative_to(PACKAGE).as_posix() for p in _modules()
              if "grading" not in p.parts  # wrong answers spell the formula out on purpose
              and POSITION_FORMULA.search(p.read_text(encoding="utf-8"))]
    assert owners == ["lm/batching.py"]


def test_the_formula_pattern_can_fail():
    assert POSITION_FORMULA.search("(mask.cumsum(-1) - 1).clamp(min=0)")
    assert POSITION_FORMULA.search("attention_mask.cumsum(dim=-1)-1")
    assert not POSITION_FORMULA.search("probs.cumsum(-1) - probs")


def test_the_names_lessons_use_are_the_one_implementation():
    from course_utils import lm, metrics, prompting
    from course_utils.finetune import costs
    from course_utils.finetune import metrics as finetune_metrics
    from course_utils.grading import get_exercise
    from course_utils.serving import generation, models, quantize
    from course_utils.widgets import sampling_explorer

    assert generation.left_pad is lm.left_pad
    assert get_exercise("08.3").reference is lm.left_pad
    assert generation.generate_batch is lm.generate_ids
    assert generation.context_length is lm.context_length
    assert prompting.generate_batch is lm.generate_text
    assert prompting.load_model is models.load_model is lm.load_model
    assert prompting.label_token_ids is finetune_metrics.label_token_ids is lm.label_token_ids
    assert metrics.perplexity is lm.perplexity
    assert costs.size_on_disk is quantize.size_on_disk is lm.size_on_disk
    assert sampling_explorer.next_token_logits is lm.next_token_logits


def test_tests_build_their_tiny_gpt2_in_one_place():
    """Every test takes its random GPT-2 from tests/_tiny_lm.py (`tiny_gpt2`)."""
    tests = Path(__file__).resolve().parent
    builders = sorted(p.name for p in tests.rglob("*.py")
                      if p.name != "_tiny_lm.py" and "GPT2Config(" in p.read_text("utf-8")
                      and p.name != Path(__file__).name)
    assert builders == [], f"build the model with _tiny_lm.tiny_gpt2 instead, in: {builders}"
