"""Build the two editions of every lesson from its jupytext source.

    python scripts/build_notebooks.py            # student editions -> notebooks/NN_name.ipynb
                                                 # solution editions -> build/solutions/
    python scripts/build_notebooks.py --check    # fail if a committed student notebook is stale

The source of truth is ``notebooks/NN_name.py`` (jupytext percent format). Code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the exercise's solution: the student
edition replaces it with ``raise NotImplementedError(...)``; the solution edition keeps it
(without the markers). Both editions are written without outputs and with stable cell ids, so
the same source always gives byte-identical notebooks.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = ROOT / "build" / "solutions"

_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n(?P<body>.*?)^[ \t]*### END SOLUTION[^\n]*\n",
    re.MULTILINE | re.DOTALL,
)
STUDENT_STUB = 'raise NotImplementedError("Your turn: replace this line with your code.")'


def sources() -> list[Path]:
    """The lesson sources, in course order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def student_text(text: str) -> str:
    """Replace every solution block with a ``raise NotImplementedError`` at its indentation."""
    if text.count("### BEGIN SOLUTION") != text.count("### END SOLUTION"):
        raise ValueError("unbalanced ### BEGIN SOLUTION / ### END SOLUTION markers")
    return _BLOCK.sub(lambda m: f"{m['indent']}{STUDENT_STUB}\n", text)


def solution_text(text: str) -> str:
    """Keep the solutions, drop the marker lines."""
    return _BLOCK.sub(lambda m: m["body"], text)


def to_notebook(text: str, name: str) -> nbformat.NotebookNode:
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(nb.cells):
        digest = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:12]
        cell["id"] = f"c{i:03d}-{digest}"
        cell.metadata.pop("lines_to_next_cell", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def _selected(only: list[str] | None) -> list[Path]:
    return [src for src in sources() if not only or src.stem[:2] in only]


def build_solutions(only: list[str] | None = None) -> list[Path]:
    """Write the solution edition of every lesson (or of those numbered in ``only``) to
    ``build/solutions``; return the files written. The test session calls this at its start."""
    written = []
    SOLUTIONS.mkdir(parents=True, exist_ok=True)
    for src in _selected(only):
        sol = render(to_notebook(solution_text(src.read_text(encoding="utf-8")), src.stem))
        target = SOLUTIONS / f"{src.stem}.ipynb"
        target.write_text(sol, encoding="utf-8")
        written.append(target)
    return written


def build(check: bool = False, solutions: bool = True,
          only: list[str] | None = None) -> list[str]:
    """Build (or with ``check`` only compare) the editions of every lesson, or of the lessons
    numbered in ``only`` (e.g. ``["03"]``); return the stale student notebooks."""
    stale = []
    for src in _selected(only):
        student = render(to_notebook(student_text(src.read_text(encoding="utf-8")), src.stem))
        target = src.with_suffix(".ipynb")
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != student:
                stale.append(target.relative_to(ROOT).as_posix())
        else:
            target.write_text(student, encoding="utf-8")
    if solutions and not check:
        build_solutions(only)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report student notebooks that differ from their source")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="only these lessons, e.g. --only 03 04")
    args = parser.parse_args(argv)
    stale = build(check=args.check, only=args.only)
    if stale:
        print("Out of date (run `python scripts/build_notebooks.py`):\n  " + "\n  ".join(stale))
        return 1
    print(f"{'Checked' if args.check else 'Built'} {len(sources())} lessons.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
