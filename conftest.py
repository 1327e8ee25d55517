"""Test-session set-up shared by every test: offline, private progress file, fresh editions.

The solution editions are rebuilt into build/solutions at the start of each run and executed
in strict mode (COURSE_STRICT=1), so an exercise whose reference fails its own grader fails
the tests; the student editions run in normal mode, where unsolved exercises read
"not attempted yet".
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # kernels inherit it; see Makefile
os.environ["COURSE_PROGRESS_FILE"] = str(Path(tempfile.mkdtemp(prefix="course-progress-"))
                                         / "progress.json")


def _build_solution_editions() -> None:
    """Write the solution editions into build/solutions (the student editions are checked,
    never rewritten).

    This runs when pytest imports this file, which is before it expands `testpaths`: built any
    later, a fresh clone (no build/ yet) would silently collect no solution edition at all.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):  # an xdist worker: the controller built them
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_notebooks

    build_notebooks.build_solutions()


_build_solution_editions()


def pytest_collection_finish(session: pytest.Session) -> None:
    """A default run (`pytest` with no paths) must include every solution edition."""
    if session.config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return
    solutions = {Path(str(item.fspath)).name for item in session.items
                 if "build/solutions" in Path(str(item.fspath)).as_posix()}
    expected = {p.name for p in (ROOT / "build" / "solutions").glob("*.ipynb")}
    if not expected or solutions != expected:
        raise pytest.UsageError(f"the run collected the solution editions {sorted(solutions)}, "
                                f"but build/solutions holds {sorted(expected)}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Strict mode for the solution editions; the kernel inherits this when nbval starts it."""
    if "build/solutions" in Path(str(item.fspath)).as_posix():
        os.environ["COURSE_STRICT"] = "1"
    else:
        os.environ.pop("COURSE_STRICT", None)
