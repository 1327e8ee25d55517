"""The autograder's engine: exercises, cases, comparison and the learner's report.

An :class:`Exercise` names a reference implementation (the solution), a function that makes its
test cases (fixed edge cases plus randomized ones), optional properties, and known mistakes with
a specific hint for each. :func:`check` runs a learner's function on every case and prints one
short report. It never raises in a learner's run; with ``COURSE_STRICT=1`` a failure raises
:class:`ExerciseFailed`, which is how the tests run the solution edition.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import pkgutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from course_utils.grading import store
from course_utils.grading.compare import _fmt, compare, same_inputs

Message = str | None
__all__ = ["Case", "CheckResult", "Exercise", "ExerciseFailed", "check", "compare",
           "exercises", "get_exercise", "hint", "progress", "register", "run_exercise",
           "solution"]


class ExerciseFailed(AssertionError):
    """Raised by :func:`check` in strict mode (``COURSE_STRICT=1``) when an exercise fails."""


class _TimeLimit(BaseException):
    """Raised inside the learner's function when it runs past the exercise's time limit."""


@dataclass
class Case:
    """One call of the learner's function: positional and keyword arguments and a label.

    ``catches`` names the wrong ideas this case is there to catch (e.g. "softmax without the
    max shift overflows"), so a reader of the exercise sees why each edge case exists.
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    catches: str = ""


@dataclass
class Exercise:
    """Everything the grader knows about one exercise.

    ``cases(rng)`` returns the cases; ``rng`` is a seeded ``torch.Generator`` so randomized
    cases are the same on every run. ``properties`` are ``fn(got, case) -> message | None``
    checks that explain a failure in the lesson's terms. ``mistakes`` pairs known-wrong
    implementations with the hint shown when a learner's output matches one of them.
    ``compare(got, expected, case)`` replaces the default comparison when an exercise needs
    a looser notion of "the same answer".
    """

    id: str
    title: str
    reference: Callable
    cases: Callable[[torch.Generator], Sequence[Case]]
    hint: str
    properties: Sequence[Callable[[Any, Case], Message]] = ()
    mistakes: Sequence[tuple[Callable, str]] = ()
    compare: Callable[[Any, Any, Case], Message] | None = None
    atol: float = 1e-5
    rtol: float = 1e-4
    check_dtype: bool = True
    time_limit: float = 20.0
    seed: int = 1234


@dataclass
class CheckResult:
    """The verdict of one :func:`check`: ``passed`` is the boolean a tool or test reads."""

    exercise_id: str
    status: str  # "passed" | "failed" | "not attempted" | "error"
    message: str
    cases_run: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<check {self.exercise_id}: {self.status}>"

    def _ipython_display_(self) -> None:
        """The report was already printed; showing the result again would repeat it."""


_REGISTRY: dict[str, Exercise] = {}


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
        except ModuleNotFoundError:
            pass
    if exercise_id not in _REGISTRY:
        _load_all()
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"There is no exercise {exercise_id!r}. Known exercises: {known}.")
    return _REGISTRY[exercise_id]


def exercises() -> dict[str, Callable]:
    """All registered exercise ids mapped to their reference functions, in order."""
    _load_all()
    return {k: _REGISTRY[k].reference for k in sorted(_REGISTRY)}


# --------------------------------------------------------------------------- running


def _call_with_limit(fn: Callable, case: Case, seconds: float) -> Any:
    """Call ``fn``; in the main thread a SIGALRM stops a function that runs too long."""
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    use_alarm = (threading.current_thread() is threading.main_thread()
                 and hasattr(signal, "setitimer"))
    if not use_alarm:
        return fn(*args, **kwargs), args, kwargs

    def on_alarm(signum, frame):
        raise _TimeLimit

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args, **kwargs), args, kwargs
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _where_it_raised(exc: BaseException) -> str:
    """The learner's own line that raised, not the wall of frames inside torch."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "course_utils" not in f.filename and "site-packages" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    code = (f.line or "").strip()
    return f" (in `{f.name}`, line {f.lineno}" + (f": `{code}`)" if code else ")")


def _arg_names(ex: Exercise, case: Case) -> list[str]:
    try:
        params = list(inspect.signature(ex.reference).parameters)
    except (TypeError, ValueError):
        params = []
    names = [params[i] if i < len(params) else f"argument {i + 1}" for i in range(len(case.args))]
    return names + list(case.kwargs)


def _describe_call(ex: Exercise, case: Case) -> str:
    parts = [f"{n}={_fmt(v)}" for n, v in zip(_arg_names(ex, case),
                                              [*case.args, *case.kwargs.values()], strict=True)]
    text = "; ".join(parts)
    return text if len(text) <= 400 else text[:397] + "..."


def _diagnose(ex: Exercise, got: Any, case: Case) -> Message:
    for wrong, message in ex.mistakes:
        try:
            wrong_out, _, _ = _call_with_limit(wrong, case, ex.time_limit)
        except BaseException:  # a mistake that can't run on this case says nothing
            continue
        if _compare(ex, got, wrong_out, case) is None:
            return message
    for prop in ex.properties:
        try:
            msg = prop(got, case)
        except Exception:
            msg = None
        if msg:
            return msg
    return None


def _compare(ex: Exercise, got: Any, expected: Any, case: Case) -> Message:
    if ex.compare is not None:
        return ex.compare(got, expected, case)
    return compare(got, expected, atol=ex.atol, rtol=ex.rtol, check_dtype=ex.check_dtype)


def run_exercise(ex: Exercise, fn: Callable) -> CheckResult:
    """Run every case of ``ex`` on ``fn`` and return the verdict (prints nothing)."""
    head = f"Exercise {ex.id} ({ex.title})"
    if not callable(fn):
        return CheckResult(ex.id, "error", f"{head}: check needs your function itself, "
                           f"but it got a {type(fn).__name__}. Pass the name without "
                           f"calling it, e.g. check(\"{ex.id}\", my_function).")
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    started = time.monotonic()
    for n, case in enumerate(cases, start=1):
        where = f'case {n} of {len(cases)}' + (f' ("{case.label}")' if case.label else "")
        remaining = ex.time_limit - (time.monotonic() - started)
        try:
            if remaining <= 0:
                raise _TimeLimit
            got, args_after, kwargs_after = _call_with_limit(fn, case, remaining)
        except NotImplementedError:
            return CheckResult(ex.id, "not attempted",
                               f"{head}: not attempted yet. Replace the "
                               f"`raise NotImplementedError(...)` line with your code and run "
                               f"the cell again. Stuck? hint(\"{ex.id}\").", n - 1)
        except _TimeLimit:
            return CheckResult(ex.id, "failed",
                               f"{head}: your function took longer than {ex.time_limit:g} s "
                               f"on {where}. Look for an endless loop, or a Python loop "
                               f"where one tensor operation would do.", n - 1)
        except Exception as exc:  # the learner's bug, reported in one line
            return CheckResult(ex.id, "failed",
                               f"{head}: your function raised {type(exc).__name__}: {exc}"
                               f"{_where_it_raised(exc)}\n  on {where}: "
                               f"{_describe_call(ex, case)}", n - 1)
        if not (same_inputs(case.args, args_after) and same_inputs(case.kwargs, kwargs_after)):
            changed = [name for name, b, a in zip(
                _arg_names(ex, case), [*case.args, *case.kwargs.values()],
                [*args_after, *kwargs_after.values()], strict=True) if not same_inputs(b, a)]
            return CheckResult(ex.id, "failed",
                               f"{head}: your function changed its input "
                               f"`{', '.join(changed)}` in place on {where}. Work on a new "
                               f"tensor instead (e.g. `x = x - m`, not `x -= m`).", n - 1)
        expected, _, _ = _call_with_limit(ex.reference, case, 60.0)
        problem = _compare(ex, got, expected, case)
        if problem:
            advice = _diagnose(ex, got, case) or ex.hint
            return CheckResult(ex.id, "failed",
                               f"{head}: failed on {where}.\n"
                               f"  inputs: {_describe_call(ex, case)}\n"
                               f"  problem: {problem}\n"
                               f"  hint: {advice}", n - 1)
    return CheckResult(ex.id, "passed", f"{head}: passed all {len(cases)} checks. Well done!",
                       len(cases))


_ICONS = {"passed": "✅", "failed": "❌", "not attempted": "⏳", "error": "⚠️"}


def strict_mode() -> bool:
    """True when ``COURSE_STRICT`` asks for failures to raise (the tests set it)."""
    return os.environ.get("COURSE_STRICT", "").strip().lower() in {"1", "true", "yes"}


def check(exercise_id: str, fn: Callable) -> CheckResult:
    """Grade ``fn`` for ``exercise_id``, print one short report and record progress."""
    try:
        ex = get_exercise(exercise_id)
    except (KeyError, TypeError) as exc:
        result = CheckResult(str(exercise_id), "error", str(exc).strip("'\""))
    else:
        result = run_exercise(ex, fn)
        store.record(result.exercise_id, result.status)
    print(f"{_ICONS[result.status]} {result.message}")
    if strict_mode() and not result.passed:
        raise ExerciseFailed(result.message)
    return result


def hint(exercise_id: str) -> None:
    """Print the exercise's hint."""
    ex = get_exercise(exercise_id)
    print(f"💡 Exercise {ex.id} ({ex.title}): {ex.hint}")


def solution(exercise_id: str) -> str:
    """Print and return the source of the reference implementation the grader uses."""
    ex = get_exercise(exercise_id)
    src = inspect.getsource(ex.reference)
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
                      for ex_id in sorted(_REGISTRY)})
    for ex_id, status in table.items():
        print(f"{_ICONS.get(status, '⏳')} {ex_id:<6} {_REGISTRY[ex_id].title:<45} {status}")
    passed = sum(s == "passed" for s in table.values())
    print(f"{passed} of {len(table)} exercises passed. (saved in {store.path()})")
    return table
