"""Helpers the lessons' grader tests share (imported as `from _grading_helpers import ...`)."""

from __future__ import annotations

import copy

import torch

from course_utils.grading import compare, get_exercise


def cases_of(ex_id: str) -> list:
    """The exercise's cases, drawn with its own seed, as the grader draws them."""
    ex = get_exercise(ex_id)
    return list(ex.cases(torch.Generator().manual_seed(ex.seed)))


def run_case(fn, case) -> tuple[bool, object]:
    """``(True, result)`` of ``fn`` on private copies of the case, or ``(False, None)``."""
    try:
        return True, fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    except Exception:
        return False, None


def advice_on_every_case(ex_id: str, fn) -> str:
    """The advice the grader gives under the rule "a mistake's hint only when the learner
    matches that mistake on EVERY case", written here independently of the grader's own
    code: the first such mistake's hint, else the exercise's."""
    ex = get_exercise(ex_id)
    cases = cases_of(ex_id)
    same = ex.compare or (lambda g, e, c: compare(g, e, atol=ex.atol, rtol=ex.rtol))
    learner = [run_case(fn, c) for c in cases]
    for wrong, advice in ex.mistakes:
        if all(ok and (w := run_case(wrong, c))[0] and same(got, w[1], c) is None
               for (ok, got), c in zip(learner, cases, strict=True)):
            return advice
    return ex.hint
