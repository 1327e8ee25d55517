"""Lesson 07 exercises: clipped n-gram precision, brevity penalty, LCS, perplexity."""

from __future__ import annotations

import math
from collections import Counter

import torch

from course_utils.grading.core import Case, Exercise, register
from course_utils.metrics import bleu_metric as bleu_mod
from course_utils.metrics import perplexity_metric as ppl_mod
from course_utils.metrics import rouge_metric as rouge_mod

_VOCAB = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


def _random_tokens(rng: torch.Generator, low: int, high: int, vocab: int = 6) -> list[str]:
    length = int(torch.randint(low, high + 1, (1,), generator=rng))
    return [_VOCAB[int(i)] for i in torch.randint(0, vocab, (length,), generator=rng)]


def _grams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


# --------------------------------------------------------------------------- 07.1 clipped precision


def _clipped_cases(rng: torch.Generator):
    the7 = ["the"] * 7
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the",
                                                       "mat"]]
    yield Case((the7, refs, 1), label="seven times 'the' (Papineni et al.)")
    yield Case((["the", "the", "cat"], [["the", "cat", "sat"], ["the", "the", "dog"]], 1),
               label="the second reference allows two 'the'")
    yield Case((["the", "cat", "the", "cat", "on", "the", "mat"], refs, 2), label="bigrams")
    yield Case((["on", "the", "mat"], refs, 4), label="prediction shorter than n")
    yield Case(([], refs, 1), label="empty prediction")
    yield Case((["the", "cat", "sat"], [["the", "cat", "sat"]], 3), label="identical, n=3")
    for _ in range(6):
        n = int(torch.randint(1, 5, (1,), generator=rng))
        n_refs = int(torch.randint(1, 4, (1,), generator=rng))
        yield Case((_random_tokens(rng, 3, 12, vocab=4),
                    [_random_tokens(rng, 2, 10, vocab=5) for _ in range(n_refs)], n),
                   label=f"random, {n_refs} reference(s), n={n}")


def _clip_none(prediction, references, n):
    in_refs = set().union(*(_grams(r, n) for r in references))
    pred = _grams(prediction, n)
    return sum(c for g, c in pred.items() if g in in_refs), max(len(prediction) - n + 1, 0)


def _clip_sum(prediction, references, n):
    total_ref = sum((_grams(r, n) for r in references), Counter())
    pred = _grams(prediction, n)
    return sum(min(c, total_ref[g]) for g, c in pred.items()), max(len(prediction) - n + 1, 0)


def _clip_first_ref(prediction, references, n):
    return bleu_mod.clipped_precision(prediction, references[:1], n)


def _clip_last_ref(prediction, references, n):
    return bleu_mod.clipped_precision(prediction, references[-1:], n)


def _clip_unique(prediction, references, n):
    in_refs = set().union(*(_grams(r, n) for r in references))
    pred = set(_grams(prediction, n))
    return len(pred & in_refs), len(pred)


def _clip_recall(prediction, references, n):
    matches, _ = bleu_mod.clipped_precision(prediction, references, n)
    return matches, max(min(len(r) for r in references) - n + 1, 0)


_ONE_REF = ("Only one of the references was used: every reference can supply matches (take "
            "each n-gram's maximum count over all of them).")

register(Exercise(
    id="07.1", title="clipped n-gram precision", reference=bleu_mod.clipped_precision,
    cases=_clipped_cases,
    hint="Count the prediction's n-grams; for each, take the largest count it has in any single "
         "reference; add min(count, that maximum). Return (that sum, number of predicted "
         "n-grams) as two ints.",
    mistakes=[
        (_clip_none, "Matches are not clipped: an n-gram counts at most as often as it appears "
                     "in a reference, so 'the the the ...' cannot score 7 out of 7."),
        (_clip_sum, "You clipped by the sum over all references; clip by the maximum count in "
                    "any single reference (Counter's | operator keeps the maximum)."),
        (_clip_first_ref, _ONE_REF),
        (_clip_last_ref, _ONE_REF),
        (_clip_unique, "You counted distinct n-grams (a set); BLEU counts every occurrence, "
                       "so repeated n-grams count again, up to the clip."),
        (_clip_recall, "The denominator is the number of n-grams in the *prediction* (this is a "
                       "precision), not in the reference."),
    ],
))

# --------------------------------------------------------------------------- 07.2 brevity penalty


def _bp_cases(rng: torch.Generator):
    yield Case((10, 10), label="same length")
    yield Case((5, 10), label="half as long")
    yield Case((14, 10), label="longer than the reference")
    yield Case((0, 7), label="an empty translation (c = 0): BP is 0, not a division by zero")
    yield Case((9, 10), label="a little short")
    yield Case((30, 3), label="ten times too long")
    for _ in range(4):
        c, r = (int(x) for x in torch.randint(1, 60, (2,), generator=rng))
        yield Case((c, r), label=f"random c={c}, r={r}")


def _bp_uncapped(c, r):
    return math.exp(1 - r / c)


def _bp_inverted(c, r):
    return 1.0 if c >= r else math.exp(1 - c / r)


def _bp_ratio(c, r):
    return 1.0 if c >= r else c / r


def _bp_symmetric(c, r):
    return math.exp(1 - max(c, r) / min(c, r)) if c else 0.0


register(Exercise(
    id="07.2", title="brevity penalty", reference=bleu_mod.brevity_penalty, cases=_bp_cases,
    hint="BP = 1 when c >= r; otherwise exp(1 - r / c), and 0 when c = 0.",
    mistakes=[
        (_bp_uncapped, "For output longer than the reference the penalty must be exactly 1: "
                       "exp(1 - r/c) is above 1 there, so only apply it when c < r."),
        (_bp_inverted, "The fraction is upside down: the exponent is 1 - r/c (reference over "
                       "translation length), which is very negative for very short output."),
        (_bp_ratio, "The penalty is exponential, exp(1 - r/c), not the plain ratio c/r."),
        (_bp_symmetric, "Long output is not penalised by BP (its extra n-grams already lower "
                        "the precision): return 1 when c >= r."),
    ],
))

# --------------------------------------------------------------------------- 07.3 LCS


def _lcs_cases(rng: torch.Generator):
    yield Case((["a", "b", "c"], ["a", "b", "c"]), label="identical")
    yield Case((list("ABCBDAB"), list("BDCABA")), label="ABCBDAB vs BDCABA (answer: 4)")
    yield Case(("police killed the gunman".split(), "the gunman police killed".split()),
               label="same words, different order")
    yield Case(("the cat sat on the mat".split(), "the cat on a mat sat".split()),
               label="gaps are allowed")
    yield Case(([], ["a", "b"]), label="empty first sequence")
    yield Case((["a", "b", "c"], ["x", "y"]), label="nothing in common")
    for _ in range(6):
        yield Case((_random_tokens(rng, 0, 12, vocab=4), _random_tokens(rng, 1, 12, vocab=4)),
                   label="random sequences")


def _lcs_substring(a, b):
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def _lcs_bag(a, b):
    return sum((Counter(a) & Counter(b)).values())


def _lcs_membership(a, b):
    return sum(token in b for token in a)


def _lcs_greedy(a, b):
    count, start = 0, 0
    for token in a:
        if token in b[start:]:
            start = b.index(token, start) + 1
            count += 1
    return count


def _lcs_short_table(a, b):
    if not a or not b:
        return 0
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a)):
        for j in range(1, len(b)):
            same = a[i - 1] == b[j - 1]
            table[i][j] = table[i - 1][j - 1] + 1 if same else max(table[i - 1][j],
                                                                     table[i][j - 1])
    return table[len(a) - 1][len(b) - 1]


_ORDER_BLIND = ("You counted shared tokens regardless of order (that is ROUGE-1's overlap); "
                "the LCS must keep the tokens in the same order in both sequences.")


def _not_longer_than_inputs(got, case: Case):
    a, b = case.args
    if isinstance(got, int) and got > min(len(a), len(b)):
        return (f"A common subsequence cannot be longer than the shorter sequence "
                f"({min(len(a), len(b))} tokens), but you returned {got}.")
    return None


register(Exercise(
    id="07.3", title="longest common subsequence (ROUGE-L)", reference=rouge_mod.lcs_length,
    cases=_lcs_cases, properties=[_not_longer_than_inputs],
    hint="Dynamic programming: T[i][j] = T[i-1][j-1] + 1 if a[i-1] == b[j-1], else "
         "max(T[i-1][j], T[i][j-1]); the answer is T[len(a)][len(b)].",
    mistakes=[
        (_lcs_substring, "You found the longest common *substring*; a subsequence keeps the "
                         "order but may skip tokens in between."),
        (_lcs_bag, _ORDER_BLIND),
        (_lcs_membership, _ORDER_BLIND),
        (_lcs_greedy, "Greedy matching can miss the longest subsequence: compare every prefix "
                      "pair with a dynamic-programming table."),
        (_lcs_short_table, "Off by one: the table needs len(a)+1 rows and len(b)+1 columns, "
                           "and the loops must run up to and including len(a) and len(b)."),
    ],
))

# --------------------------------------------------------------------------- 07.4 perplexity


def _ppl_cases(rng: torch.Generator):
    def logprobs(*shape):
        return -torch.rand(*shape, generator=rng) * 6

    vocab = 50
    yield Case((torch.full((1, 6), -math.log(vocab)), torch.ones(1, 6)),
               label=f"uniform guess over {vocab} tokens: perplexity {vocab}")
    yield Case((logprobs(1, 5), torch.ones(1, 5, dtype=torch.long)), label="one sequence")
    lp = logprobs(3, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    lp[mask == 0] = -4.5  # padding holds whatever the model put there
    yield Case((lp, mask), label="padded batch: masked positions must not count")
    yield Case((logprobs(2, 4), torch.tensor([[True, True, True, False],
                                              [True, False, False, False]])),
               label="boolean mask")
    yield Case((logprobs(2, 7).double(), torch.ones(2, 7)), label="float64")
    yield Case((logprobs(2, 5),), {"mask": None}, label="mask=None: every token counts")
    for _ in range(3):
        batch, length = 4, 8
        lengths = torch.randint(1, length + 1, (batch,), generator=rng)
        mask = (torch.arange(length) < lengths[:, None]).long()
        lp = logprobs(batch, length).masked_fill(mask == 0, -7.0)
        yield Case((lp, mask), label="random padded batch")


def _ppl_masked(lp, mask):
    return torch.ones_like(lp) if mask is None else mask.to(lp.dtype)


def _ppl_no_negation(token_logprobs, mask=None):
    m = _ppl_masked(token_logprobs, mask)
    return ((token_logprobs * m).sum(-1) / m.sum(-1)).exp()


def _ppl_mask_ignored(token_logprobs, mask=None):
    return (-token_logprobs.mean(-1)).exp()


def _ppl_full_length(token_logprobs, mask=None):
    m = _ppl_masked(token_logprobs, mask)
    return (-(token_logprobs * m).sum(-1) / token_logprobs.shape[-1]).exp()


def _ppl_mean_of_exp(token_logprobs, mask=None):
    m = _ppl_masked(token_logprobs, mask)
    return ((-token_logprobs).exp() * m).sum(-1) / m.sum(-1)


def _ppl_base2(token_logprobs, mask=None):
    m = _ppl_masked(token_logprobs, mask)
    return 2 ** (-(token_logprobs * m).sum(-1) / m.sum(-1))


def _ppl_pooled(token_logprobs, mask=None):
    m = _ppl_masked(token_logprobs, mask)
    nll = -(token_logprobs * m).sum() / m.sum()
    return nll.exp().expand(token_logprobs.shape[0]).clone()


def _at_least_one(got, case: Case):
    if isinstance(got, torch.Tensor) and got.is_floating_point() and bool((got < 1 - 1e-6).any()):
        return ("A perplexity is never below 1 (log-probabilities are <= 0): did you forget the "
                "minus sign in exp(-mean log p)?")
    return None


register(Exercise(
    id="07.4", title="perplexity from token log-probabilities",
    reference=ppl_mod.perplexity_from_logprobs, cases=_ppl_cases,
    hint="For each row: exp(-(sum of log-probs where mask is 1) / (number of 1s in the mask)). "
         "mask=None means every position counts. Return a (batch,) tensor.",
    properties=[_at_least_one],
    mistakes=[
        (_ppl_no_negation, "exp(mean log p) is 1 / perplexity: negate the mean log-probability "
                           "(the mean negative log-likelihood) before exp."),
        (_ppl_mask_ignored, "Padding was averaged in: only positions where mask is 1 count, in "
                            "the sum and in the number of tokens."),
        (_ppl_full_length, "You divided by the padded length; divide by the number of real "
                           "tokens, mask.sum(-1)."),
        (_ppl_mean_of_exp, "You averaged per-token perplexities exp(-log p); perplexity is "
                           "exp of the *mean* negative log-probability."),
        (_ppl_base2, "The log-probabilities are natural logs, so use exp(), not 2 ** x."),
        (_ppl_pooled, "Every row got the same number, pooled over the batch: compute one "
                      "perplexity per sequence (sum over dim=-1)."),
    ],
))
