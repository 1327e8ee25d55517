"""The autograder's front: the registry and ``check``, ``hint``, ``solution``, ``progress``.

An :class:`Exercise` names a reference implementation (the solution), a function that makes its
test cases (fixed edge cases plus randomized ones), optional properties, and known mistakes with
a specific hint for each. :func:`check` runs a learner's function on every case (the engine is
:mod:`course_utils.grading.run`) and prints one short report. It never raises and never hangs
in a learner's run, whatever the learner's code does (endless loops, a bare ``except:``,
``sys.exit()``, results on the meta device, 20,000 printed lines); with ``COURSE_STRICT=1``
a failure raises :class:`ExerciseFailed`, which is how the tests run the solution edition.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable
from typing import Any

from course_utils.grading import store
from course_utils.grading.compare import compare
from course_utils.grading.exercise import (
    Case,
    CheckResult,
    Exercise,
    ExerciseFailed,
    Mismatch,
)
from course_utils.grading.guard import TimeLimit
from course_utils.grading.run import run_exercise

__all__ = ["Case", "CheckResult", "Exercise", "ExerciseFailed", "Mismatch", "check", "compare",
           "exercises", "get_exercise", "hint", "progress", "register", "run_exercise",
           "solution"]

_TimeLimit = TimeLimit  # the names this module had before the engine moved out


_REGISTRY: dict[str, Exercise] = {}


def id_order(exercise_id: str) -> tuple:
    """Sort key for ids in notebook order: "03.9" before "03.10" (strings would not)."""
    return tuple(int(p) if p.isdigit() else p for p in exercise_id.split("."))


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (called by the ``lessonNN`` modules at import)."""
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_all(strict: bool = True) -> None:
    """Import every ``lessonNN`` module; ``strict=False`` skips one that fails to import."""
    import course_utils.grading as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("lesson"):
            try:
                importlib.import_module(f"course_utils.grading.{info.name}")
            except Exception as exc:
                if strict:
                    raise
                print(f"(could not load the exercises of {info.name}: {exc})")


def get_exercise(exercise_id: str) -> Exercise:
    """Return the registered exercise, loading its lesson's module on first use."""
    if not isinstance(exercise_id, str):
        raise TypeError(f'exercise ids are strings such as "01.2", got {exercise_id!r}')
    if exercise_id not in _REGISTRY:
        lesson = exercise_id.split(".")[0]
        try:
            importlib.import_module(f"course_utils.grading.lesson{lesson}")
        except (ModuleNotFoundError, ValueError):
            pass
    if exercise_id not in _REGISTRY:
        _load_all(strict=False)
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY, key=id_order)) or "none"
        raise KeyError(f"There is no exercise {exercise_id!r}. Known exercises: {known}.")
    return _REGISTRY[exercise_id]


def exercises() -> dict[str, Callable]:
    """All registered exercise ids mapped to their reference functions, in order."""
    _load_all()
    return {k: _REGISTRY[k].reference for k in sorted(_REGISTRY, key=id_order)}


_ICONS = {"passed": "✅", "failed": "❌", "not attempted": "⏳", "error": "⚠️"}


def strict_mode() -> bool:
    """True when ``COURSE_STRICT`` asks for failures to raise (the tests set it)."""
    return os.environ.get("COURSE_STRICT", "").strip().lower() in {"1", "true", "yes"}


def check(exercise_id: str, fn: Callable) -> CheckResult:
    """Grade ``fn`` for ``exercise_id``, print one short report and record progress."""
    try:
        ex = get_exercise(exercise_id)
    except Exception as exc:
        result = CheckResult(str(exercise_id), "error", str(exc).strip("'\""))
    else:
        result = run_exercise(ex, fn)
        try:
            store.record(result.exercise_id, result.status)
        except Exception as exc:  # progress is a convenience: never the reason check fails
            print(f"(could not save progress: {exc})")
    if result.printed:
        print(result.printed)
    print(f"{_ICONS.get(result.status, '')} {result.message}")
    if strict_mode() and not result.passed:
        raise ExerciseFailed(result.message)
    return result


def _find(exercise_id: Any) -> Exercise | None:
    try:
        return get_exercise(exercise_id)
    except Exception as exc:
        text = str(exc).strip("'\"")
        if "Known exercises" not in text:
            text += f" Known exercises: {', '.join(sorted(_REGISTRY, key=id_order)) or 'none'}."
        print(f"⚠️ {text}")
        return None


def hint(exercise_id: str) -> None:
    """Print the exercise's hint (or the known exercise ids, for an unknown one)."""
    ex = _find(exercise_id)
    if ex is not None:
        print(f"💡 Exercise {ex.id} ({ex.title}): {ex.hint}")


def solution(exercise_id: str) -> str:
    """Print and return the source of the reference implementation the grader uses."""
    ex = _find(exercise_id)
    if ex is None:
        return ""
    try:
        src = inspect.getsource(ex.reference)
    except (OSError, TypeError):
        src = f"# (the source of {ex.reference!r} is not available)\n"
    print(f"# Reference solution for exercise {ex.id} ({ex.title}),\n"
          f"# from {ex.reference.__module__}.{ex.reference.__qualname__}\n{src}")
    return src


class Progress(dict):
    """Exercise id -> status; printed by :func:`progress`, so Jupyter need not show it again."""

    def _ipython_display_(self) -> None:
        """Already printed as a table."""


def progress() -> Progress:
    """Print and return every exercise's status from the local progress file."""
    done = store.load()
    _load_all(strict=False)
    table = Progress({ex_id: done.get(ex_id, {}).get("status", "not attempted")
                      for ex_id in sorted(_REGISTRY, key=id_order)})
    for ex_id, status in table.items():
        print(f"{_ICONS.get(status, '⏳')} {ex_id:<6} {_REGISTRY[ex_id].title:<45} {status}")
    passed = sum(s == "passed" for s in table.values())
    print(f"{passed} of {len(table)} exercises passed. (saved in {store.path()})")
    return table
