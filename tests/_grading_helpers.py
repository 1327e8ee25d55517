"""Helpers the lessons' grader tests share (imported as `from _grading_helpers import ...`)."""

from __future__ import annotations

import copy

import torch

from course_utils.grading import compare, get_exercise
from course_utils.grading.exercise import Exercise


def cases_of(ex_id: str) -> list:
    """The exercise's cases, drawn with its own seed, as the grader draws them."""
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


def run_case(fn, case, ex=None) -> tuple[bool, object]:
    """``(True, result)`` of ``fn`` on private copies of the case, or ``(False, None)``.

    With ``ex``, ``fn`` runs as that exercise runs a candidate (``ex.attempt``): an exercise
    that overrides it (lesson 04's pool draws call the function once per seed) is run its way.
    """
    try:
        mine = copy.deepcopy(case)
        if ex is None or type(ex).attempt is Exercise.attempt:
            return True, fn(*mine.args, **mine.kwargs)
        return True, ex.attempt(fn, mine, ex.expected_of(copy.deepcopy(case))[1])
    except Exception:
        return False, None


def advice_on_every_case(ex_id: str, fn) -> str:
    """The advice the grader gives under the rule "a mistake's hint only when the learner
    matches that mistake on EVERY case", written here independently of the grader's own
    code: the first such mistake's hint, else the exercise's."""
    ex = get_exercise(ex_id)
    cases = cases_of(ex_id)
    same = ex.compare or (lambda g, e, c: compare(g, e, atol=ex.atol, rtol=ex.rtol))
    learner = [run_case(fn, c, ex) for c in cases]
    for wrong, advice in ex.mistakes:
        if all(ok and (w := run_case(wrong, c, ex))[0] and same(got, w[1], c) is None
               for (ok, got), c in zip(learner, cases, strict=True)):
            return advice
    return ex.hint
