"""The engine: one grading of one candidate against every case of an exercise.

For each case the reference runs first, on its own deep copy of the arguments (all cases,
before the learner's code runs at all); then the learner's answer runs on another copy, under
the exercise's time limit (one budget for all cases) with what it prints captured; then its
result is compared, also under a guard. A hint names a known mistake only when the learner's
answer agrees with that mistake on every case. Nothing here raises to the learner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils.grading import report
from course_utils.grading.compare import _fmt, compare, nonfinite_problem, type_name
from course_utils.grading.exercise import (
    Case,
    CheckResult,
    Exercise,
    GraderProblem,
    Message,
    Mismatch,
)
from course_utils.grading.guard import Capture, Outcome, guarded
from course_utils.grading.isolation import is_shared, private_copy, safe_snapshot

GRADER_TIME_LIMIT = 60.0  # seconds for one call of the grader's own code (reference, mistakes)


def _describe_call(ex: Exercise, case: Case) -> str:
    try:
        text = "; ".join(f"{n}={_fmt(v)}" for n, v in ex.named_values(case))
    except Exception:
        return "(the inputs cannot be shown)"
    return text if len(text) <= 400 else text[:397] + "..."


def _judge(ex: Exercise, got: Any, expected: Any, case: Case) -> Message:
    """The comparison every exercise makes: its own (or the default) comparison, and then the
    NaN/inf rule, which no comparison can waive (a threshold test ``got > t`` passes NaN)."""
    if ex.compare is not None:
        problem = ex.compare(got, expected, case)
    else:
        problem = compare(got, expected, atol=ex.atol, rtol=ex.rtol, check_dtype=ex.check_dtype)
    return problem or nonfinite_problem(got, expected, allow_inf=ex.allow_inf)


def _grader(fn: Callable[[], Any], what: str) -> Any:
    """Run the grader's own code under a guard; its failure is a :class:`GraderProblem`."""
    out = guarded(fn, GRADER_TIME_LIMIT)
    if out.timed_out:
        raise GraderProblem(f"{what} took longer than {GRADER_TIME_LIMIT:g} s")
    if out.error is not None:
        raise GraderProblem(f"{what} raised {type(out.error).__name__}: "
                             f"{report.first_line(out.error)}") from out.error
    return out.value


class _Run:
    """One grading of one candidate: the cases, the expected answers, the time budget."""

    def __init__(self, ex: Exercise, fn: Callable) -> None:
        self.ex, self.fn = ex, fn
        self.head = f"Exercise {ex.id} ({ex.title})"
        self.capture = Capture()
        self.used = 0.0  # seconds of the learner's budget spent so far
        self.cases = list(_grader(lambda: list(ex.cases(torch.Generator().manual_seed(ex.seed))),
                                  "making the cases"))
        self.expected = []  # (expected, context) per case, computed before the learner runs
        for n, case in enumerate(self.cases, start=1):
            mine = private_copy(case)
            self.expected.append(_grader(lambda mine=mine: ex.expected_of(mine),
                                         f"the reference on case {n}"))
        self.results: dict[int, Outcome] = {}  # the learner's outcome per case index

    def where(self, i: int) -> str:
        label = self.cases[i].label
        return f"case {i + 1} of {len(self.cases)}" + (f' ("{label}")' if label else "")

    def learner(self, i: int, capture: Capture | None) -> tuple[Outcome, Case, list]:
        """Run the learner's answer on case ``i`` within what is left of the budget."""
        mine = private_copy(self.cases[i])
        values = [v for _, v in self.ex.named_values(mine)]
        before = [safe_snapshot(v) for v in values]
        out = guarded(lambda: self.ex.attempt(self.fn, mine, self.expected[i][1]),
                      self.ex.time_limit - self.used, capture)
        self.used += out.seconds
        changed = [] if not out.ok else [
            n for (n, v), b in zip(self.ex.named_values(mine), before, strict=True)
            if safe_snapshot(v) != b]
        self.results[i] = out
        return out, mine, changed

    def judge(self, i: int, got: Any) -> Message:
        """Compare under a guard; a comparison that fails is the learner's odd result only
        if the same comparison works on the expected answer itself."""
        expected, case = self.expected[i][0], self.cases[i]
        out = guarded(lambda: _judge(self.ex, got, expected, case),
                      max(self.ex.time_limit - self.used, 5.0))
        if out.ok:
            return out.value
        if out.timed_out:
            return (f"comparing your result (a {type_name(got)}) with the expected one took "
                    f"too long.")
        twin = private_copy(Case(args=(expected,))).args[0]
        _grader(lambda: _judge(self.ex, twin, expected, case), "comparing the expected result")
        return (f"your result ({_fmt(got)}) could not be checked: "
                f"{type(out.error).__name__}: {report.first_line(out.error)}.")

    def same_as(self, wrong: Callable, first: int) -> bool:
        """True when ``wrong`` agrees with the learner on every case (both raise, or the
        results match), trying the failing case ``first``."""
        for i in [first, *(j for j in range(len(self.cases)) if j != first)]:
            if i not in self.results and self.used < self.ex.time_limit:
                self.learner(i, None)
            mine = self.results.get(i)
            if mine is None or mine.timed_out:
                return False
            if not self._agrees(i, mine, wrong):
                return False
        return True

    def _agrees(self, i: int, mine: Outcome, wrong: Callable) -> bool:
        case, context = private_copy(self.cases[i]), self.expected[i][1]
        theirs = guarded(lambda: self.ex.attempt(wrong, case, context), GRADER_TIME_LIMIT)
        if (mine.error is None) != (theirs.error is None) or theirs.timed_out:
            return False
        if mine.error is not None:
            return True
        agree = guarded(lambda: _judge(self.ex, mine.value, theirs.value, self.cases[i]),
                        GRADER_TIME_LIMIT)
        return agree.ok and agree.value is None

    def diagnose(self, i: int, got: Any) -> str:
        for wrong, message in self.ex.mistakes:
            if self.same_as(wrong, i):
                return message
        for prop in self.ex.properties:
            out = guarded(lambda prop=prop: prop(got, self.cases[i]), GRADER_TIME_LIMIT)
            if out.ok and out.value:
                return out.value
        return self.ex.hint

    def verdict(self, status: str, message: str, cases_run: int) -> CheckResult:
        return CheckResult(self.ex.id, status, f"{self.head}: {message}", cases_run,
                           self.capture.summary())

    def run(self) -> CheckResult:
        ex = self.ex
        for i, case in enumerate(self.cases):
            out, mine, changed = self.learner(i, self.capture)
            if out.timed_out:
                return self.verdict("failed", (
                    f"your function took longer than {ex.time_limit:g} s, the time limit for "
                    f"all {len(self.cases)} cases of this exercise together, and was stopped "
                    f"on {self.where(i)}. Look for an endless loop (a retry loop with a bare "
                    f"`except:` is one), or a Python loop where one tensor operation would "
                    f"do."), i)
            if out.error is not None:
                exc = out.error
                if report.is_stub(exc, self.fn):
                    return self.verdict("not attempted", (
                        f"not attempted yet. Replace the `raise NotImplementedError(...)` line "
                        f"with your code and run the cell again. Stuck? hint(\"{ex.id}\")."), i)
                if isinstance(exc, Mismatch):
                    return self.verdict("failed", f"{exc} (on {self.where(i)})", i)
                stop = report.stopped(exc)
                return self.verdict("failed", (
                    f"{stop} (on {self.where(i)})" if stop else
                    f"your function raised {type(exc).__name__}: {report.first_line(exc)}"
                    f"{report.where_it_raised(exc)}\n  on {self.where(i)}: "
                    f"{_describe_call(ex, case)}"), i)
            if changed:
                pairs = zip(ex.named_values(case), ex.named_values(mine), strict=True)
                shared = [n for (n, a), (_, b) in pairs if n in changed and is_shared(a, b)]
                note = (f" (`{', '.join(shared)}` is shared with the rest of the lesson: run "
                        f"the cell that made it again)") if shared else ""
                return self.verdict("failed", (
                    f"your function changed its input `{', '.join(changed)}` in place on "
                    f"{self.where(i)}{note}. Work on a new tensor or object instead (e.g. "
                    f"`x = x - m`, not `x -= m`)."), i)
            problem = self.judge(i, out.value)
            if problem:
                advice = self.diagnose(i, out.value)
                return self.verdict("failed", (
                    f"failed on {self.where(i)}.\n  inputs: {_describe_call(ex, case)}\n"
                    f"  problem: {problem}\n  hint: {advice}"), i)
        return self.verdict("passed", f"passed all {len(self.cases)} checks. Well done!",
                            len(self.cases))


def run_exercise(ex: Exercise, fn: Callable) -> CheckResult:
    """Run every case of ``ex`` on ``fn`` and return the verdict (prints nothing, never
    raises). A failure of the grader's own code is status "error", not the learner's fault."""
    head = f"Exercise {ex.id} ({ex.title})"
    if not callable(fn):
        return CheckResult(ex.id, "error", f"{head}: check needs your function itself, "
                           f"but it got a {type_name(fn)}. Pass the name without "
                           f"calling it, e.g. check(\"{ex.id}\", my_function).")
    try:
        return _Run(ex, fn).run()
    except GraderProblem as exc:
        return CheckResult(ex.id, "error", f"{head}: the grader itself failed ({exc}). This is "
                           f"a problem in the course, not in your code: your answer was not "
                           f"judged. Please report it.")
    except BaseException as exc:  # a bug in the engine: still not the learner's traceback
        return CheckResult(ex.id, "error", f"{head}: the grader itself failed "
                           f"({type(exc).__name__}: {report.first_line(exc)}). This is a "
                           f"problem in the course, not in your code. Please report it.")
