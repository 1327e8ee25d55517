"""Known-wrong answers to lesson 03's top-p exercise (03.12): each rejected, saying why;
transformers' TopPLogitsWarper (an independent implementation) accepted on every case."""

import pytest
import torch
from transformers import TopPLogitsWarper

from course_utils.grading import get_exercise, run_exercise


def _verdict(fn):
    return run_exercise(get_exercise("03.12"), fn)


def _flat(fn):
    def wrapped(logits, p):
        flat = logits.reshape(-1, logits.shape[-1])
        return fn(flat, p).reshape(logits.shape)
    return wrapped


def top_p_drops_crossing_token(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep = probs.cumsum(-1) <= p
    return logits.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))


def top_p_no_top_token_rule(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep = probs.cumsum(-1) < p
    return logits.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))


def top_p_sorted_ascending(logits, p):
    probs, order = logits.softmax(-1).sort(-1)
    keep = probs.cumsum(-1) - probs < p
    return logits.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))


def top_p_forgets_to_unsort(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep = probs.cumsum(-1) - probs < p
    return logits.masked_fill(~keep, float("-inf"))


def top_p_returns_renormalised_probs(logits, p):
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < p
    kept = probs * keep.scatter(-1, order, keep)
    return kept / kept.sum(-1, keepdim=True)


def top_p_exp_without_shift(logits, p):
    e = logits.exp()
    probs = e / e.sum(-1, keepdim=True)
    sorted_probs, order = probs.sort(-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < p
    return logits.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))


def top_p_multiplies_mask(logits, p):
    sorted_probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < p
    mask = keep.scatter(-1, order, keep).to(logits.dtype)
    return logits * mask + (1 - mask) * float("-inf")


def top_p_min_prob_threshold(logits, p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < 1 - p, float("-inf"))


def top_p_keeps_one_too_many(logits, p):
    sorted_probs, order = logits.softmax(-1).sort(-1, descending=True)
    before = sorted_probs.cumsum(-1) - sorted_probs
    keep = torch.cat([torch.ones_like(before[..., :1], dtype=torch.bool),
                      before[..., :-1] < p], dim=-1)
    return logits.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))


def top_p_transformers(logits, p):
    return _flat(lambda x, q: TopPLogitsWarper(q)(None, x.clone()))(logits, p)


@pytest.mark.parametrize("wrong, why", [
    (top_p_drops_crossing_token, "up to and including the one that makes the total reach p"),
    (top_p_no_top_token_rule, "up to and including the one that makes the total reach p"),
    (top_p_sorted_ascending, "Sort in descending order"),
    (top_p_forgets_to_unsort, "most likely token was removed"),
    (top_p_returns_renormalised_probs, "not probabilities"),
    (top_p_exp_without_shift, "logits near 1000"),
    (top_p_multiplies_mask, "contains NaN"),
    (top_p_min_prob_threshold, "add up to probability"),
    (top_p_keeps_one_too_many, "you kept too many tokens"),
])
def test_known_wrong_answer_is_rejected_with_a_specific_message(wrong, why):
    result = _verdict(wrong)
    assert result.status == "failed", wrong.__name__
    assert why in result.message, result.message


def test_reference_and_transformers_are_accepted():
    assert _verdict(get_exercise("03.12").reference).passed
    result = _verdict(top_p_transformers)
    assert result.passed, result.message


def test_ties_may_be_resolved_either_way():
    """A flat row: any 5 of 10 tokens is a nucleus of p = 0.45; this answer keeps the last
    five, transformers' sort keeps others."""
    ex = get_exercise("03.12")
    case = next(c for c in ex.cases(torch.Generator().manual_seed(ex.seed))
                if c.label.startswith("a flat row"))
    logits, p = case.args
    last_five = logits.clone()
    last_five[..., :5] = float("-inf")
    assert ex.compare(last_five, ex.reference(*case.args), case) is None
    first_four = logits.clone()
    first_four[..., 4:] = float("-inf")
    assert "probability" in ex.compare(first_four, ex.reference(*case.args), case)


def test_cases_and_mistakes_meet_the_standard():
    ex = get_exercise("03.12")
    cases = list(ex.cases(torch.Generator().manual_seed(ex.seed)))
    assert all(c.label and c.catches for c in cases)
    for wrong, hint in ex.mistakes:
        for case in cases:
            wrong(*case.args, **case.kwargs)
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, result.message
