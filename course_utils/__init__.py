"""course_utils: the reference implementations, widgets and autograder of the course.

The notebooks import from here; so do the widgets, the grader and the tests. Every module is
importable without Jupyter. The layers, and what may import what: ``docs/ARCHITECTURE.md``.

This front door is light: it applies the course's environment defaults (offline hub, sleeping
OpenMP threads: :mod:`course_utils.environment`, the one place they are set) and nothing else.
The names a learner uses in every lesson are handed on when first used, so
``from course_utils.serving import ServerProcess`` loads neither the grader nor torch, and the
server's process never loads the grader or the widgets.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from course_utils.environment import apply_defaults

apply_defaults()  # before any course module imports torch, transformers or huggingface_hub

_WHERE = {"check": "grading", "exercises": "grading", "hint": "grading", "progress": "grading",
          "solution": "grading", "seed_everything": "seeding", "start_lesson": "lesson"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:  # `from course_utils import data` then imports the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
