"""Lesson 07's grader rejects known-wrong answers with their specific hint, accepts right ones.

The wrong implementations here are written independently of the ``mistakes`` in
course_utils/grading/lesson07.py, the way a learner would get them wrong.
"""

from __future__ import annotations

import copy
import math
from collections import Counter

import pytest
import torch

from course_utils.grading import get_exercise, run_exercise

LESSON_07 = ["07.1", "07.2", "07.3", "07.4", "07.5", "07.6"]


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


def precision_negative_count(prediction, references, n):
    matches, _ = precision_right(prediction, references, n)
    return matches, len(prediction) - n + 1


def precision_per_token(prediction, references, n):
    matches, _ = precision_right(prediction, references, n)
    return matches, len(prediction)


def precision_min_over_references(prediction, references, n):
    common = Counter(_ngram_list(references[0], n))
    for ref in references[1:]:
        common &= Counter(_ngram_list(ref, n))
    pred = Counter(_ngram_list(prediction, n))
    return sum(min(c, common[g]) for g, c in pred.items()), sum(pred.values())


def precision_range_too_short(prediction, references, n):
    def grams(tokens):
        return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n)]

    best = Counter()
    for ref in references:
        best |= Counter(grams(ref))
    pred = Counter(grams(prediction))
    return sum(min(c, best[g]) for g, c in pred.items()), sum(pred.values())


def precision_over_shortest_reference(prediction, references, n):
    matches, _ = precision_right(prediction, references, n)
    return matches, len(_ngram_list(min(references, key=len), n))


def precision_zip(prediction, references, n):
    """Correct: n-grams with zip, the clip as a dict of maxima."""
    def grams(tokens):
        return Counter(zip(*(tokens[k:] for k in range(n)), strict=False))

    clip = {}
    for ref in references:
        for g, c in grams(ref).items():
            clip[g] = max(clip.get(g, 0), c)
    pred = grams(prediction)
    return sum(min(c, clip.get(g, 0)) for g, c in pred.items()), sum(pred.values())


@pytest.mark.parametrize("fn, words", [
    (precision_unclipped, "not clipped"),
    (precision_clip_by_total, "sum over all references"),
    (precision_last_reference_only, "Only one of the references"),
    (precision_as_fraction, "tuple of 2 items"),
    (precision_distinct, "distinct n-grams"),
    (precision_negative_count, "not negative"),
    (precision_per_token, "counts n-grams, not tokens"),
    (precision_min_over_references, "minimum over the references"),
    (precision_range_too_short, "the last n-gram is missing"),
    (precision_over_shortest_reference, "not in the reference"),
])
def test_07_1_rejects(fn, words):
    result = _verdict("07.1", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.2


def _counts(hyps, refs, max_order, pick_length):
    correct, total, c, r = [0] * max_order, [0] * max_order, 0, 0
    for hyp, rs in zip(hyps, refs, strict=True):
        c += len(hyp)
        r += pick_length(len(hyp), sorted(len(x) for x in rs))
        for n in range(1, max_order + 1):
            m, t = precision_right(hyp, rs, n)
            correct[n - 1] += m
            total[n - 1] += t
    return correct, total, c, r


def _closest_length(c, lengths):
    return min(lengths, key=lambda x: (abs(x - c), x))


def cbleu_right(hypotheses, references, max_order=4):
    correct, total, c, r = _counts(hypotheses, references, max_order, _closest_length)
    if 0 in correct:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(correct, total, strict=True)) / max_order
    bp = 1.0 if c >= r else (0.0 if c == 0 else math.exp(1 - r / c))
    return math.exp(log_p) * bp


def cbleu_with_fractions(hypotheses, references, max_order=4):
    """Correct: the product of the precisions to the power 1/N, exact fractions, min(1, ...)."""
    from fractions import Fraction

    correct, total, c, r = _counts(hypotheses, references, max_order, _closest_length)
    product = Fraction(1)
    for m, t in zip(correct, total, strict=True):
        product *= Fraction(m, t) if t else 0
    if product == 0 or c == 0:
        return 0.0
    return float(product) ** (1 / max_order) * min(1.0, math.exp(1 - r / c))


def cbleu_average_of_sentences(hypotheses, references, max_order=4):
    scores = [cbleu_right([h], [rs], max_order) for h, rs in zip(hypotheses, references,
                                                                 strict=True)]
    return sum(scores) / len(scores)


def cbleu_shortest_reference(hypotheses, references, max_order=4):
    correct, total, c, r = _counts(hypotheses, references, max_order, lambda c, ls: ls[0])
    if 0 in correct:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(correct, total, strict=True)) / max_order
    return math.exp(log_p) * (1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0))


def cbleu_without_penalty(hypotheses, references, max_order=4):
    correct, total, _, _ = _counts(hypotheses, references, max_order, _closest_length)
    if 0 in correct:
        return 0.0
    return math.exp(sum(math.log(m / t) for m, t in zip(correct, total, strict=True))
                    / max_order)


def cbleu_plain_average(hypotheses, references, max_order=4):
    correct, total, c, r = _counts(hypotheses, references, max_order, _closest_length)
    mean = sum(m / t if t else 0.0 for m, t in zip(correct, total, strict=True)) / max_order
    return mean * (1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0))


def cbleu_sacrebleu_scale(hypotheses, references, max_order=4):
    return 100 * cbleu_right(hypotheses, references, max_order)


def cbleu_divides_by_zero(hypotheses, references, max_order=4):
    correct, total, c, r = _counts(hypotheses, references, max_order, _closest_length)
    bp = 1.0 if c >= r else math.exp(1 - r / c)
    if 0 in correct:
        return 0.0
    return bp * math.exp(sum(math.log(m / t) for m, t in zip(correct, total, strict=True))
                         / max_order)


def cbleu_log_of_zero(hypotheses, references, max_order=4):
    correct, total, c, r = _counts(hypotheses, references, max_order, _closest_length)
    log_p = sum(math.log(m / t) if t else 0.0 for m, t in zip(correct, total, strict=True))
    return math.exp(log_p / max_order) * (1.0 if c >= r else (math.exp(1 - r / c) if c else 0))


def cbleu_penalty_per_sentence(hypotheses, references, max_order=4):
    correct, total, _, _ = _counts(hypotheses, references, max_order, _closest_length)
    if 0 in correct:
        return 0.0
    bps = []
    for h, rs in zip(hypotheses, references, strict=True):
        r = _closest_length(len(h), [len(x) for x in rs])
        bps.append(1.0 if len(h) >= r else (math.exp(1 - r / len(h)) if h else 0.0))
    geo = math.exp(sum(math.log(m / t) for m, t in zip(correct, total, strict=True)) / max_order)
    return geo * sum(bps) / len(bps)


def cbleu_four_orders(hypotheses, references, max_order=4):
    return cbleu_right(hypotheses, references, 4)


@pytest.mark.parametrize("fn, words", [
    (cbleu_average_of_sentences, "averaged sentence BLEUs"),
    (cbleu_shortest_reference, "closest* in length"),
    (cbleu_without_penalty, "brevity penalty is missing"),
    (cbleu_plain_average, "*geometric* mean"),
    (cbleu_sacrebleu_scale, "between 0 and 1"),
    (cbleu_divides_by_zero, "ZeroDivisionError"),
    (cbleu_log_of_zero, "is expected"),
    (cbleu_penalty_per_sentence, "is expected"),
    (cbleu_four_orders, "max_order was ignored"),
])
def test_07_2_rejects(fn, words):
    result = _verdict("07.2", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_07_2_reference_is_sacrebleus_corpus_bleu_on_every_case():
    """The grader's answers are sacrebleu's, tokenize="none" (tokens are whitespace-free)."""
    import sacrebleu

    ex = get_exercise("07.2")
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        hyps, refs = case.args
        max_order = case.kwargs.get("max_order", 4)
        n_refs = max(len(rs) for rs in refs)
        # sacrebleu wants one stream per reference index; pad missing ones with None
        streams = [[" ".join(rs[k]) if k < len(rs) else None for rs in refs]
                   for k in range(n_refs)]
        theirs = sacrebleu.BLEU(tokenize="none", smooth_method="none",
                                max_ngram_order=max_order).corpus_score(
            [" ".join(h) for h in hyps], streams)
        assert ex.reference(*case.args, **case.kwargs) == pytest.approx(theirs.score / 100,
                                                                         abs=1e-12), case.label


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


def lcs_greedy_both_ways(a, b):
    return max(lcs_first_match(a, b), lcs_first_match(b, a))


def lcs_two_pointers(a, b):
    i = j = n = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i, j, n = i + 1, j + 1, n + 1
        else:
            j += 1
    return n


def lcs_zip(a, b):
    return sum(1 for x, y in zip(a, b, strict=False) if x == y)


def lcs_distinct_shared(a, b):
    return len(set(a) & set(b))


def lcs_returns_the_subsequence(a, b):
    t = [[[] for _ in range(len(b) + 1)] for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                t[i][j] = t[i - 1][j - 1] + [a[i - 1]]
            else:
                t[i][j] = max(t[i - 1][j], t[i][j - 1], key=len)
    return t[-1][-1]


def lcs_recursive(a, b):
    """Correct: the recursion, memoised."""
    from functools import cache

    @cache
    def best(i, j):
        if i == len(a) or j == len(b):
            return 0
        if a[i] == b[j]:
            return 1 + best(i + 1, j + 1)
        return max(best(i + 1, j), best(i, j + 1))

    return best(0, 0)


@pytest.mark.parametrize("fn, words", [
    (lcs_contiguous, "substring"),
    (lcs_shared_words, "regardless of order"),
    (lcs_first_match, "Greedy"),
    (lcs_table_too_small, "Off by one"),
    (lcs_greedy_both_ways, "Greedy"),
    (lcs_two_pointers, "is expected"),
    (lcs_zip, "same position only"),
    (lcs_distinct_shared, "regardless of order"),
    (lcs_returns_the_subsequence, "should be a number"),
])
def test_07_3_rejects(fn, words):
    result = _verdict("07.3", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.4


def rl_right(prediction, reference):
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    lcs = lcs_right(prediction, reference)
    p, r = lcs / len(prediction), lcs / len(reference)
    return p, r, (2 * p * r / (p + r) if lcs else 0.0)


def rl_dice_form(prediction, reference):
    """Correct: 2PR / (P + R) with P = L/m, R = L/n is 2L / (m + n)."""
    m, n = len(prediction), len(reference)
    lcs = lcs_recursive(prediction, reference) if m and n else 0
    return (lcs / m if m else 0.0), (lcs / n if n else 0.0), (2 * lcs / (m + n) if m + n else 0.0)


def rl_recall_first(prediction, reference):
    p, r, f = rl_right(prediction, reference)
    return r, p, f


def rl_no_empty_check(prediction, reference):
    lcs = lcs_right(prediction, reference)
    p, r = lcs / len(prediction), lcs / len(reference)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def rl_zero_over_zero(prediction, reference):
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    lcs = lcs_right(prediction, reference)
    p, r = lcs / len(prediction), lcs / len(reference)
    return p, r, 2 * p * r / (p + r)


def rl_mean(prediction, reference):
    p, r, _ = rl_right(prediction, reference)
    return p, r, (p + r) / 2


def rl_coco(prediction, reference):
    p, r, _ = rl_right(prediction, reference)
    beta = 1.2
    return p, r, ((1 + beta**2) * p * r / (r + beta**2 * p) if p * r else 0.0)


def rl_word_overlap(prediction, reference):
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    shared = sum((Counter(prediction) & Counter(reference)).values())
    p, r = shared / len(prediction), shared / len(reference)
    return p, r, (2 * p * r / (p + r) if shared else 0.0)


def rl_f_only(prediction, reference):
    return rl_right(prediction, reference)[2]


def rl_percent(prediction, reference):
    return tuple(100 * x for x in rl_right(prediction, reference))


def rl_same_denominator(prediction, reference):
    if not reference:
        return 0.0, 0.0, 0.0
    score = lcs_right(prediction, reference) / len(reference)
    return score, score, score


@pytest.mark.parametrize("fn, words", [
    (rl_recall_first, "swapped"),
    (rl_no_empty_check, "ZeroDivisionError"),
    (rl_zero_over_zero, "ZeroDivisionError"),
    (rl_mean, "*harmonic* mean"),
    (rl_coco, "beta = 1"),
    (rl_word_overlap, "regardless of order"),
    (rl_f_only, "tuple of 3 items"),
    (rl_percent, "between 0 and 1"),
    (rl_same_denominator, "is expected"),
])
def test_07_4_rejects(fn, words):
    result = _verdict("07.4", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_07_4_reference_is_rouge_scores_rouge_l_on_every_case():
    """rouge-score on the same tokens (tokenizer=None keeps lowercase ascii words as they are)."""
    from rouge_score import rouge_scorer, tokenizers

    class AsGiven(tokenizers.Tokenizer):
        def tokenize(self, text):
            return text.split("\x00") if text else []

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=AsGiven())
    ex = get_exercise("07.4")
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        prediction, reference = case.args
        theirs = scorer.score("\x00".join(reference), "\x00".join(prediction))["rougeL"]
        ours = ex.reference(*case.args)
        assert ours == pytest.approx((theirs.precision, theirs.recall, theirs.fmeasure),
                                     abs=1e-12), case.label


# --------------------------------------------------------------------------- 07.5


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


def ppl_multiplies_by_mask(token_logprobs, mask=None):
    m = torch.ones_like(token_logprobs) if mask is None else mask.to(token_logprobs.dtype)
    return torch.exp(-(token_logprobs * m).sum(-1) / m.sum(-1))


def ppl_clamped_count(token_logprobs, mask=None):
    keep = torch.ones_like(token_logprobs, dtype=torch.bool) if mask is None else mask.bool()
    nll = -torch.where(keep, token_logprobs, 0.0).sum(-1)
    return torch.exp(nll / keep.sum(-1).clamp(min=1))


def ppl_product_of_inverse_probs(token_logprobs, mask=None):
    keep = torch.ones_like(token_logprobs, dtype=torch.bool) if mask is None else mask.bool()
    inverse = torch.where(keep, torch.exp(-token_logprobs), 1.0)
    return inverse.prod(-1) ** (1.0 / keep.sum(-1))


def ppl_logs_again(token_logprobs, mask=None):
    keep = torch.ones_like(token_logprobs, dtype=torch.bool) if mask is None else mask.bool()
    nll = torch.where(keep, -torch.log(token_logprobs), 0.0).sum(-1)
    return torch.exp(nll / keep.sum(-1))


def ppl_bitwise_not(token_logprobs, mask=None):
    if mask is None:
        mask = torch.ones_like(token_logprobs, dtype=torch.long)
    nll = -token_logprobs.masked_fill(~mask, 0.0).sum(-1)
    return torch.exp(nll / mask.sum(-1))


def ppl_nll_loss(token_logprobs, mask=None):
    """Correct, with torch's nll_loss: ignored positions take no part, whatever they hold."""
    keep = torch.ones_like(token_logprobs, dtype=torch.bool) if mask is None else mask.bool()
    target = torch.where(keep, 0, -100).flatten()
    losses = torch.nn.functional.nll_loss(token_logprobs.reshape(-1, 1), target,
                                          ignore_index=-100, reduction="none")
    return torch.exp(losses.view_as(token_logprobs).sum(-1) / keep.sum(-1))


def ppl_row_by_row(token_logprobs, mask=None):
    """Correct: one row at a time, with boolean indexing."""
    keep = torch.ones_like(token_logprobs, dtype=torch.bool) if mask is None else mask.bool()
    return torch.stack([torch.exp(-row[k].mean())
                        for row, k in zip(token_logprobs, keep, strict=True)])


@pytest.mark.parametrize("fn, words", [
    (ppl_forgets_minus, "negate the mean"),
    (ppl_ignores_mask, "Padding was averaged in"),
    (ppl_counts_padding, "padded length"),
    (ppl_average_of_token_perplexities, "averaged per-token perplexities"),
    (ppl_bits, "not 2 ** x"),
    (ppl_one_number, "pooled over the batch"),
    (ppl_no_default_mask, "mask=None"),
    (ppl_multiplies_by_mask, "-inf * 0"),
    (ppl_clamped_count, "Don't clamp"),
    (ppl_product_of_inverse_probs, "has no tokens to average over"),
    (ppl_logs_again, "already log-probabilities"),
    (ppl_bitwise_not, "raised TypeError"),
])
def test_07_5_rejects(fn, words):
    result = _verdict("07.5", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- 07.6


def kappa_matrices(a, b, labels, weights=None):
    """Correct, with numpy matrices the way sklearn's cohen_kappa_score computes it."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    confusion = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        confusion[index[x], index[y]] += 1
    expected = np.outer(confusion.sum(1), confusion.sum(0)) / confusion.sum()
    grid = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(float)
    w = {None: (grid > 0).astype(float), "linear": grid, "quadratic": grid ** 2}[weights]
    denominator = (w * expected).sum()
    return float("nan") if denominator == 0 else float(1 - (w * confusion).sum() / denominator)


def kappa_by_agreement(a, b, labels, weights=None):
    """Correct: agreement form with weights 1 - w / w_max (the same kappa for any scale)."""
    a, b, k = list(a), list(b), len(labels)
    pos = {label: i for i, label in enumerate(labels)}
    power = {None: 0, "linear": 1, "quadratic": 2}[weights]

    def agree(i, j):
        if power == 0 or k == 1:
            return float(i == j)
        return 1 - abs(i - j) ** power / (k - 1) ** power

    n = len(a)
    p_o = sum(agree(pos[x], pos[y]) for x, y in zip(a, b, strict=True)) / n
    share_a = Counter(pos[x] for x in a)
    share_b = Counter(pos[y] for y in b)
    p_e = sum(agree(i, j) * ca * cb for i, ca in share_a.items()
              for j, cb in share_b.items()) / n ** 2
    return float("nan") if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)


def kappa_percent_agreement(a, b, labels, weights=None):
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def kappa_scotts_pi(a, b, labels, weights=None):
    """Chance from both raters' labels thrown together (Scott's pi), weights and all."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    k, n = len(labels), len(a)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1 / n
    pooled = (observed.sum(0) + observed.sum(1)) / 2
    grid = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(float)
    w = {None: (grid > 0).astype(float), "linear": grid, "quadratic": grid ** 2}[weights]
    chance = (w * np.outer(pooled, pooled)).sum()
    return float("nan") if chance == 0 else float(1 - (w * observed).sum() / chance)


def kappa_divides_by_zero(a, b, labels, weights=None):
    """Right everywhere except one label only: 1 - observed / 0."""
    a, b, n = list(a), list(b), len(a)
    pos = {label: i for i, label in enumerate(labels)}
    power = {None: 0, "linear": 1, "quadratic": 2}[weights]

    def w(i, j):
        return float(i != j) if power == 0 else abs(i - j) ** power

    observed = sum(w(pos[x], pos[y]) for x, y in zip(a, b, strict=True)) / n
    expected = sum(w(pos[x], pos[y]) for x in a for y in b) / n ** 2
    return 1 - observed / expected


def kappa_one_for_perfect(a, b, labels, weights=None):
    if list(a) == list(b):
        return 1.0
    return kappa_matrices(a, b, labels, weights)


def kappa_ignores_weights(a, b, labels, weights=None):
    return kappa_matrices(a, b, labels, None)


def kappa_squares_for_linear(a, b, labels, weights=None):
    return kappa_matrices(a, b, labels, {"linear": "quadratic", "quadratic": "linear"}.get(weights))


def kappa_value_distance(a, b, labels, weights=None):
    """Distances on the ratings' own values: 0-based and 1-based scales agree; words crash."""
    return kappa_matrices(a, b, sorted(set(list(a) + list(b))), weights)


def kappa_skips_zero(a, b, labels, weights=None):
    kept = [(x, y) for x, y in zip(a, b, strict=True) if x and y]
    return kappa_matrices([x for x, _ in kept], [y for _, y in kept], labels, weights) \
        if kept else float("nan")


@pytest.mark.parametrize("fn, words", [
    (kappa_percent_agreement, "observed agreement p_o"),
    (kappa_scotts_pi, "Scott's pi"),
    (kappa_divides_by_zero, "ZeroDivisionError"),
    (kappa_one_for_perfect, "return NaN"),
    (kappa_ignores_weights, "weights were ignored"),
    (kappa_squares_for_linear, "Linear and quadratic are swapped"),
    (kappa_value_distance, "is expected"),
    (kappa_skips_zero, "Items rated 0"),
])
def test_07_6_rejects(fn, words):
    result = _verdict("07.6", fn)
    assert result.status == "failed"
    assert words in result.message, result.message


# --------------------------------------------------------------------------- all


@pytest.mark.parametrize("exercise_id, right", [
    ("07.1", precision_right), ("07.2", cbleu_right), ("07.3", lcs_right),
    ("07.5", ppl_right), ("07.1", precision_zip), ("07.2", cbleu_with_fractions),
    ("07.3", lcs_recursive), ("07.5", ppl_nll_loss), ("07.5", ppl_row_by_row),
    ("07.4", rl_right), ("07.4", rl_dice_form), ("07.6", kappa_matrices),
    ("07.6", kappa_by_agreement),
])
def test_accepts_the_reference_and_an_independent_right_answer(exercise_id, right):
    ex = get_exercise(exercise_id)
    assert run_exercise(ex, ex.reference).status == "passed"
    assert run_exercise(ex, right).status == "passed", run_exercise(ex, right).message


@pytest.mark.parametrize("exercise_id", LESSON_07)
def test_known_mistakes_are_rejected_with_their_own_hint(exercise_id):
    ex = get_exercise(exercise_id)
    for wrong, hint in ex.mistakes:
        result = run_exercise(ex, wrong)
        assert result.status == "failed" and hint in result.message, (wrong.__name__,
                                                                     result.message)


def test_unsolved_exercise_reads_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Your turn")

    for exercise_id in LESSON_07:
        assert _verdict(exercise_id, stub).status == "not attempted"


@pytest.mark.parametrize("exercise_id", LESSON_07)
def test_every_case_says_what_it_catches(exercise_id):
    ex = get_exercise(exercise_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        assert case.label and case.catches, case


@pytest.mark.parametrize("exercise_id", LESSON_07)
def test_every_known_mistake_runs_on_every_case(exercise_id):
    """A mistake's hint is shown only when the learner matches it on every case."""
    ex = get_exercise(exercise_id)
    for case in ex.cases(torch.Generator().manual_seed(ex.seed)):
        for wrong, _ in ex.mistakes:
            wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def test_the_references_agree_with_independent_packages():
    """sacrebleu's BLEU and rouge-score's ROUGE-L are built on the same two pieces."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    from course_utils.metrics import bleu, rouge

    preds = ["the cat sat on the mat today", "a dog ran", "the the the the"]
    refs = [["the cat is on the mat"], ["a dog ran far away"], ["the cat"]]
    ours = bleu(preds, refs, ref_length="closest")
    theirs = BLEU(smooth_method="none").corpus_score(preds, [[r[0] for r in refs]])
    assert ours["bleu"] * 100 == pytest.approx(theirs.score, abs=1e-6)
    assert ours["brevity_penalty"] == pytest.approx(theirs.bp, abs=1e-6)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    for p, (r,) in zip(preds, refs, strict=True):
        ours_l = rouge([p], [r], rouge_types=["rougeL"])["rougeL"]
        assert ours_l == pytest.approx(scorer.score(r, p)["rougeL"].fmeasure, abs=1e-9)


def test_perplexity_reference_matches_cross_entropy():
    """perplexity_from_logprobs against torch's cross-entropy on real logits with padding."""
    from course_utils.metrics import perplexity_from_logprobs, token_logprobs

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g) * 3
    ids = torch.randint(0, 11, (3, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    lp = token_logprobs(logits, ids).masked_fill(mask[:, 1:] == 0, float("-inf"))
    got = perplexity_from_logprobs(lp, mask[:, 1:])
    for row in range(3):
        n = int(mask[row].sum())
        loss = torch.nn.functional.cross_entropy(logits[row, :n - 1], ids[row, 1:n])
        torch.testing.assert_close(got[row], loss.exp())


def test_a_version_3_file_gets_lesson_07s_new_numbers_once(monkeypatch, tmp_path):
    """07.2 (brevity penalty) merged into corpus BLEU: dropped; perplexity 07.4 is now 07.5."""
    import json

    from course_utils.grading import store

    v3 = {"07.2": {"status": "passed"}, "07.4": {"status": "failed", "attempts": 3},
          "07.3": {"status": "passed", "attempts": 1}, "_version": 3}
    target = tmp_path / "p.json"
    target.write_text(json.dumps(v3))
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(target))
    first = store.load()
    assert first["07.5"]["attempts"] == 3 and first["07.3"]["attempts"] == 1
    assert not {"07.2", "07.4"} & set(first)
    assert store.load() == first
