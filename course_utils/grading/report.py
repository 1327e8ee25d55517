"""The sentences of a learner's report: where their code raised, what kind of stop it was.

Kept apart from the engine in :mod:`course_utils.grading.core` so that the wording lives in
one place. Nothing here runs the learner's code.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
import types
from collections.abc import Callable
from typing import Any

import course_utils

# The student edition's stub (scripts/build_notebooks.py STUDENT_STUB) raises
# NotImplementedError("Your turn: replace this line with your code.").
STUB_MESSAGE_PREFIX = "Your turn"

_NOT_LEARNER = tuple(
    os.path.realpath(p) + os.sep
    for p in {os.path.dirname(course_utils.__file__),
              *(sysconfig.get_paths().get(k, "") for k in
                ("stdlib", "platstdlib", "purelib", "platlib"))}
    if p
)


def _is_learner_file(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return False
    path = os.path.realpath(filename) if os.path.isabs(filename) else filename
    return not path.startswith(_NOT_LEARNER) and "site-packages" not in path


def where_it_raised(exc: BaseException) -> str:
    """The learner's own line that raised, not the wall of frames inside torch."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if _is_learner_file(f.filename)]
    except Exception:
        return ""
    if not frames:
        return ""
    f = frames[-1]
    code = (f.line or "").strip()
    return f" (in `{f.name}`, line {f.lineno}" + (f": `{code}`)" if code else ")")


def _codes_of(obj: Any, seen: set | None = None) -> set:
    """Every code object written in ``obj``'s body: nested functions, lambdas, comprehensions,
    and for a class each of its methods."""
    seen = set() if seen is None else seen
    if isinstance(obj, types.CodeType):
        if obj not in seen:
            seen.add(obj)
            for const in obj.co_consts:
                if isinstance(const, types.CodeType):
                    _codes_of(const, seen)
        return seen
    obj = getattr(obj, "func", obj)  # functools.partial
    obj = getattr(obj, "__func__", obj)  # bound and class methods
    if isinstance(obj, type):
        for value in vars(obj).values():
            for part in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
                if part is not None and hasattr(part, "__code__"):
                    _codes_of(part.__code__, seen)
        return seen
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        _codes_of(code, seen)
    return seen


def is_stub(exc: BaseException, fn: Callable) -> bool:
    """True when ``exc`` is the unsolved exercise's own ``raise NotImplementedError``.

    That is the student edition's stub (its message starts with "Your turn"), or a bare
    ``raise NotImplementedError`` written directly in the learner's function (or class). A
    NotImplementedError with another message, or raised by a helper or by torch, is an error.
    """
    if not isinstance(exc, NotImplementedError):
        return False
    message = str(exc)
    if message.startswith(STUB_MESSAGE_PREFIX):
        return True
    if message.strip():
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code in _codes_of(fn)


def stopped(exc: BaseException) -> str | None:
    """The sentence for an exception that would have stopped the notebook, else None."""
    if isinstance(exc, SystemExit):
        return ("your function called sys.exit() (or exit()/quit()), which would stop the "
                "whole notebook: return the result instead.")
    if isinstance(exc, KeyboardInterrupt):
        return ("your function was interrupted (KeyboardInterrupt). If you pressed Stop, run "
                "the check again; if your code raises KeyboardInterrupt itself, remove that.")
    if not isinstance(exc, Exception):
        return f"your function raised {type(exc).__name__}, which stops a program: remove it."
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 300 else line[:297] + "..."
