"""Lesson 07's grader rejects known-wrong answers with their specific hint, accepts right ones.

The wrong implementations here are written independently of the ``mistakes`` in
course_utils/grading/lesson07.py, the way a learner would get them wrong.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise


def _verdict(exercise_id, fn):
    return run_exercise(get_exercise(exercise_id), fn)


# --------------------------------------------------------------------------- 07.1


def _ngram_list(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def precision_right(prediction, references, n):
    pred = _ngram_list(prediction, n)
    best = {}
    for ref in references:
        for gram, count in Counter(_ngram_list(ref, n)).items():
            best[gram] = max(best.get(gram, 0), count)
    return sum(min(c, best.get(g, 0)) for g, c in Counter(pred).items()), len(pred)


def precision_unclipped(prediction, references, n):
    pred = _ngram_list(prediction, n)
    ref_grams = {g for ref in references for g in _ngram_list(ref, n)}
    return sum(g in ref_grams for g in pred), len(pred)


def precision_clip_by_total(prediction, references, n):
    pool = Counter()
    for ref in references:
        pool.update(_ngram_list(ref, n))
    pred = Counter(_ngram_list(prediction, n))
    return sum(min(c, pool[g]) for g, c in pred.items()), sum(pred.values())


def precision_last_reference_only(prediction, references, n):
    return precision_right(prediction, references[-1:], n)


def precision_as_fraction(prediction, references, n):
    m, t = precision_right(prediction, references, n)
    return m / t if t else 0.0


def precision_distinct(prediction, references, n):
    pred = set(_ngram_list(prediction, n))
    refs = {g for ref in references for g in _ngram_list(ref, n)}
    return len(pred & refs), len(pred)


@pytest.mark.parametrize("fn, words", [
    (precision_unclipped, "not clipped"),
    (precision_clip_by_total, "sum over all references"),
    (precision_last_reference_only, "Only one of the references"),
    (precision_as_fraction, "tuple of 2 items"),
    (precision_distinct, "distinct n-grams"),
])
def test_07_1_rejects(fn, words):
    result = _verdict("07.1", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.2


def bp_right(c, r):
    return 1.0 if c >= r else (0.0 if c == 0 else math.exp(1 - r / c))


def bp_never_one(c, r):
    return math.exp(1 - r / c) if c else 0.0


def bp_upside_down(c, r):
    return 1.0 if c > r else math.exp(1 - c / r)


def bp_linear(c, r):
    return min(1.0, c / r)


def bp_divides_by_zero(c, r):
    return 1.0 if c >= r else math.exp(1 - r / c)


def bp_penalises_long_output(c, r):
    if c == 0:
        return 0.0
    return math.exp(1 - r / c) if c < r else math.exp(1 - c / r)


@pytest.mark.parametrize("fn, words", [
    (bp_never_one, "exactly 1"),
    (bp_upside_down, "upside down"),
    (bp_linear, "not the plain ratio"),
    (bp_divides_by_zero, "ZeroDivisionError"),
    (bp_penalises_long_output, "Long output is not penalised"),
])
def test_07_2_rejects(fn, words):
    result = _verdict("07.2", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.3


def lcs_right(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def lcs_contiguous(a, b):
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else 0)
        best, prev = max(best, *cur), cur
    return best


def lcs_shared_words(a, b):
    return len([t for t in a if t in b])  # also ignores order


def lcs_first_match(a, b):
    i = n = 0
    for x in a:
        for j in range(i, len(b)):
            if b[j] == x:
                n, i = n + 1, j + 1
                break
    return n


def lcs_table_too_small(a, b):
    if not a or not b:
        return 0
    t = [[0] * len(b) for _ in a]
    for i in range(1, len(a)):
        for j in range(1, len(b)):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j],
                                                                           t[i][j - 1])
    return t[-1][-1]


@pytest.mark.parametrize("fn, words", [
    (lcs_contiguous, "substring"),
    (lcs_shared_words, "regardless of order"),
    (lcs_first_match, "Greedy"),
    (lcs_table_too_small, "Off by one"),
])
def test_07_3_rejects(fn, words):
    result = _verdict("07.3", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.4


def ppl_right(token_logprobs, mask=None):
    if mask is None:
        mask = torch.ones_like(token_logprobs, dtype=torch.bool)
    mask = mask.bool()
    nll = torch.where(mask, -token_logprobs, torch.zeros_like(token_logprobs)).sum(1)
    return torch.exp(nll / mask.sum(1))


def ppl_forgets_minus(token_logprobs, mask=None):
    return 1 / ppl_right(token_logprobs, mask)


def ppl_ignores_mask(token_logprobs, mask=None):
    return torch.exp(-token_logprobs.sum(1) / token_logprobs.shape[1])


def ppl_counts_padding(token_logprobs, mask=None):
    m = torch.ones_like(token_logprobs) if mask is None else mask.float()
    return torch.exp(-(token_logprobs * m).sum(1) / m.numel() * m.shape[0])


def ppl_average_of_token_perplexities(token_logprobs, mask=None):
    m = torch.ones_like(token_logprobs) if mask is None else mask.to(token_logprobs.dtype)
    return (torch.exp(-token_logprobs) * m).sum(1) / m.sum(1)


def ppl_bits(token_logprobs, mask=None):
    return torch.pow(2.0, torch.log(ppl_right(token_logprobs, mask))).to(token_logprobs.dtype)


def ppl_one_number(token_logprobs, mask=None):
    m = torch.ones_like(token_logprobs) if mask is None else mask.to(token_logprobs.dtype)
    value = torch.exp(-(token_logprobs * m).sum() / m.sum())
    return value.repeat(token_logprobs.shape[0])


def ppl_no_default_mask(token_logprobs, mask):
    keep = mask.bool()  # AttributeError when mask is None
    return torch.exp(-(token_logprobs * keep).sum(1) / keep.sum(1))


@pytest.mark.parametrize("fn, words", [
    (ppl_forgets_minus, "negate the mean"),
    (ppl_ignores_mask, "Padding was averaged in"),
    (ppl_counts_padding, "padded length"),
    (ppl_average_of_token_perplexities, "averaged per-token perplexities"),
    (ppl_bits, "not 2 ** x"),
    (ppl_one_number, "pooled over the batch"),
    (ppl_no_default_mask, "mask=None"),
])
def test_07_4_rejects(fn, words):
    result = _verdict("07.4", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- all


@pytest.mark.parametrize("exercise_id, right", [
    ("07.1", precision_right), ("07.2", bp_right), ("07.3", lcs_right), ("07.4", ppl_right),
])
def test_accepts_the_reference_and_an_independent_right_answer(exercise_id, right):
    ex = get_exercise(exercise_id)
    assert run_exercise(ex, ex.reference).status == "passed"
    assert run_exercise(ex, right).status == "passed", run_exercise(ex, right).message


@pytest.mark.parametrize("exercise_id", ["07.1", "07.2", "07.3", "07.4"])
def test_known_mistakes_are_rejected_with_their_own_hint(exercise_id):
    ex = get_exercise(exercise_id)
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)


def test_unsolved_exercise_reads_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for exercise_id in ("07.1", "07.2", "07.3", "07.4"):
        assert _verdict(exercise_id, stub).status == "not attempted"
