"""What an exercise is: its cases, its reference, its known mistakes, and the verdict.

:class:`Exercise` also says how a candidate (the reference, the learner's answer, a known
mistake) is run on a case: :meth:`Exercise.named_values`, :meth:`Exercise.expected_of` and
:meth:`Exercise.attempt`. A subclass overrides them to grade something other than a function,
as :class:`course_utils.grading.modules.ModuleExercise` does for an ``nn.Module`` class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

Message = str | None


class ExerciseFailed(AssertionError):
    """Raised by :func:`check` in strict mode (``COURSE_STRICT=1``) when an exercise fails."""


class Mismatch(Exception):  # noqa: N818 (a verdict, not an error)
    """Raised by :meth:`Exercise.attempt` when the learner's answer has the wrong form
    (e.g. a class where a function is expected); its message is the learner's report."""


class GraderProblem(Exception):
    """The grader's own code failed (a case generator, the reference, a comparison)."""


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
    implementations with the hint shown when a learner's output matches one of them on every
    case. ``compare(got, expected, case)`` replaces the default comparison when an exercise
    needs a looser notion of "the same answer"; NaN where the reference has none fails before
    it is called (and inf too unless ``allow_inf``). ``time_limit`` is for all cases together.
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
    allow_inf: bool = False

    # How a candidate (the reference, the learner's answer, a mistake) runs on a case. A
    # subclass overrides these to grade something other than a function (grading.modules).
    def named_values(self, case: Case) -> list[tuple[str, Any]]:
        """The values a candidate receives, with the names the report uses for them."""
        try:
            params = list(inspect.signature(self.reference).parameters)
        except (TypeError, ValueError):
            params = []
        names = [params[i] if i < len(params) else f"argument {i + 1}"
                 for i in range(len(case.args))]
        return [*zip(names, case.args, strict=True), *case.kwargs.items()]

    def expected_of(self, case: Case) -> tuple[Any, Any]:
        """The reference's answer on (a private copy of) ``case``, and a context for
        :meth:`attempt` (None here)."""
        return self.reference(*case.args, **case.kwargs), None

    def attempt(self, candidate: Callable, case: Case, context: Any) -> Any:
        """Run a candidate on (a private copy of) ``case``; raise :class:`Mismatch` for an
        answer of the wrong form."""
        return candidate(*case.args, **case.kwargs)


@dataclass
class CheckResult:
    """The verdict of one :func:`check`: ``passed`` is the boolean a tool or test reads.

    ``printed`` is what the learner's code printed during the check, cut to its first lines.
    """

    exercise_id: str
    status: str  # "passed" | "failed" | "not attempted" | "error"
    message: str
    cases_run: int = 0
    printed: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<check {self.exercise_id}: {self.status}>"

    def _ipython_display_(self) -> None:
        """The report was already printed; showing the result again would repeat it."""
