"""Lesson 07 exercises: clipped n-gram precision, corpus BLEU, LCS, ROUGE-L, perplexity, kappa.

Every mistake below is the reference with one wrong idea in it, written so that it runs on
every case: the grader names a mistake only when the learner's answer equals it on all cases.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch

from course_utils.grading.core import Case, Exercise, register
from course_utils.metrics import agreement as agreement_mod
from course_utils.metrics import bleu_metric as bleu_mod
from course_utils.metrics import perplexity_metric as ppl_mod
from course_utils.metrics import rouge_metric as rouge_mod

_VOCAB = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


def _random_tokens(rng: torch.Generator, low: int, high: int, vocab: int = 6) -> list[str]:
    length = int(torch.randint(low, high + 1, (1,), generator=rng))
    return [_VOCAB[int(i)] for i in torch.randint(0, vocab, (length,), generator=rng)]


def _randint(rng: torch.Generator, low: int, high: int) -> int:
    """A random int in [low, high], both included."""
    return int(torch.randint(low, high + 1, (1,), generator=rng))


def _grams(tokens, n, drop_last=False):
    stop = len(tokens) - n + (0 if drop_last else 1)
    return Counter(tuple(tokens[i:i + n]) for i in range(stop))


# --------------------------------------------------------------------------- 07.1 clipped precision


def _clipped_cases(rng: torch.Generator):
    the7 = ["the"] * 7
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the",
                                                       "mat"]]
    yield Case(("the sat cat sat sat cat sat".split(), ["cat sat sat".split(),
                                                      "the sat cat sat".split()], 2),
               label="bigrams against two references",
               catches="no clipping; clipped by the sum or minimum over references; one "
                       "reference only; distinct n-grams; wrong denominator; the last n-gram "
                       "dropped")
    yield Case((["the", "the", "cat"], [["the", "cat", "sat"], ["the", "the", "dog"]], 1),
               label="the second reference allows two 'the'",
               catches="only the first reference used; clipped by the minimum over references")
    yield Case((the7, refs, 1), label="seven times 'the' (Papineni et al.)",
               catches="matches not clipped; distinct n-grams counted once")
    yield Case((["the", "cat", "the", "cat", "the", "cat"],
                [["the", "cat", "the", "cat"], ["the", "cat", "on", "the", "cat", "the", "cat"]],
                2),
               label="repeated bigrams: the clip is the largest count in one reference",
               catches="clipped by the sum or the minimum over references; only one reference")
    yield Case((["the", "cat", "the", "cat", "on", "the", "mat"], refs, 2), label="bigrams",
               catches="unigrams whatever n is; denominator len(prediction) instead of the "
                       "number of n-grams")
    yield Case((["the", "cat", "sat"], [["the", "cat", "sat"]], 3), label="identical, n=3",
               catches="the last n-gram dropped (range(len - n))")
    yield Case((["on", "the", "mat"], refs, 4), label="prediction one token shorter than n",
               catches="a partial n-gram at the end counted")
    yield Case((["mat"], refs, 3), label="prediction two tokens shorter than n",
               catches="len(prediction) - n + 1 without max(..., 0) is negative")
    yield Case(([], refs, 4), label="empty prediction, n=4",
               catches="len(prediction) - n + 1 without max(..., 0) is negative")
    yield Case((["a", "cat"], [["a", "cat"], ["one", "cat"]], 5),
               label="n larger than the prediction and every reference",
               catches="a negative n-gram count; a crash when no reference has an n-gram")
    yield Case(([], refs, 1), label="empty prediction, n=1",
               catches="division by zero; a fraction instead of the two counts")
    yield Case((["the", "cat", "sat"], [[], ["the", "cat", "sat", "down"]], 1),
               label="one reference is empty",
               catches="clipped by the minimum over references; denominator from the shortest "
                       "reference (recall)")
    yield Case((["don't", "stop", "café", "don't"], [["don't", "stop", "don't", "café"]], 1),
               label="apostrophes and accents in the tokens",
               catches="tokens changed before counting")
    for _ in range(10):
        n = _randint(rng, 1, 5)
        n_refs = _randint(rng, 1, 4)
        yield Case((_random_tokens(rng, 0, 15, vocab=4),
                    [_random_tokens(rng, 0, 12, vocab=5) for _ in range(n_refs)], n),
                   label=f"random, {n_refs} reference(s), n={n}",
                   catches="any of the above on repeated n-grams over several references")


def _n_predicted(prediction, n):
    return max(len(prediction) - n + 1, 0)


def _clip_none(prediction, references, n):
    in_refs = set().union(*(_grams(r, n) for r in references))
    pred = _grams(prediction, n)
    return sum(c for g, c in pred.items() if g in in_refs), _n_predicted(prediction, n)


def _clip_sum(prediction, references, n):
    total_ref = sum((_grams(r, n) for r in references), Counter())
    pred = _grams(prediction, n)
    return sum(min(c, total_ref[g]) for g, c in pred.items()), _n_predicted(prediction, n)


def _clip_min(prediction, references, n):
    pred = _grams(prediction, n)
    counts = [_grams(r, n) for r in references]
    return (sum(min(c, *(ref[g] for ref in counts)) for g, c in pred.items()),
            _n_predicted(prediction, n))


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


def _clip_negative_total(prediction, references, n):
    matches, _ = bleu_mod.clipped_precision(prediction, references, n)
    return matches, len(prediction) - n + 1


def _clip_token_total(prediction, references, n):
    matches, _ = bleu_mod.clipped_precision(prediction, references, n)
    return matches, len(prediction)


def _clip_drop_last(prediction, references, n):
    pred = _grams(prediction, n, drop_last=True)
    best = Counter()
    for r in references:
        best |= _grams(r, n, drop_last=True)
    return sum(min(c, best[g]) for g, c in pred.items()), max(len(prediction) - n, 0)


def _clip_counts_sane(got, case: Case):
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return None
    matches, total = got
    if isinstance(total, int | float) and total < 0:
        return ("A prediction shorter than n has no n-grams: the count is 0, not negative. "
                "Use max(len(prediction) - n + 1, 0).")
    if isinstance(matches, int | float) and isinstance(total, int | float) and matches > total:
        return "There cannot be more clipped matches than n-grams in the prediction."
    return None


_ONE_REF = ("Only one of the references was used: every reference can supply matches (take "
            "each n-gram's maximum count over all of them).")

register(Exercise(
    id="07.1", title="clipped n-gram precision", reference=bleu_mod.clipped_precision,
    cases=_clipped_cases, properties=[_clip_counts_sane],
    hint="Count the prediction's n-grams; for each, take the largest count it has in any single "
         "reference; add min(count, that maximum). Return (that sum, number of predicted "
         "n-grams) as two ints; a prediction shorter than n has 0 n-grams.",
    mistakes=[
        (_clip_negative_total, "A prediction shorter than n has no n-grams: the count is 0, not "
                               "negative. Use max(len(prediction) - n + 1, 0)."),
        (_clip_token_total, "The denominator counts n-grams, not tokens: a prediction of L "
                            "tokens has L - n + 1 n-grams."),
        (_clip_first_ref, _ONE_REF),
        (_clip_last_ref, _ONE_REF),
        (_clip_none, "Matches are not clipped: an n-gram counts at most as often as it appears "
                     "in a reference, so 'the the the ...' cannot score 7 out of 7."),
        (_clip_sum, "You clipped by the sum over all references; clip by the maximum count in "
                    "any single reference (Counter's | operator keeps the maximum)."),
        (_clip_min, "You clipped by the minimum over the references (Counter's & operator); "
                    "clip by the maximum count in any single reference (the | operator)."),
        (_clip_unique, "You counted distinct n-grams (a set); BLEU counts every occurrence, "
                       "so repeated n-grams count again, up to the clip."),
        (_clip_recall, "The denominator is the number of n-grams in the *prediction* (this is a "
                       "precision), not in the reference."),
        (_clip_drop_last, "Off by one: the last n-gram is missing. tokens[i:i + n] for i in "
                          "range(len(tokens) - n + 1) reaches the end."),
    ],
))

# --------------------------------------------------------------------------- 07.2 corpus BLEU
# (the brevity penalty, once an exercise of its own, is part of this one)


def _words(text: str) -> list[str]:
    return text.split()


def _corpus_bleu_cases(rng: torch.Generator):
    toy = ([_words("the cat sat on the mat"), _words("a dog ran in the park today"),
            _words("the bird sings")],
           [[_words("the cat sat on the mat")], [_words("the dog ran in the park")],
            [_words("the small bird sings in the tree")]])
    yield Case(toy, label="three sentences, one reference each",
               catches="the mean of sentence BLEUs; the mean of per-sentence precisions; "
                       "an arithmetic mean of the precisions; no brevity penalty")
    yield Case(([_words("the cat is on the mat"), _words("there is a dog")],
                [[_words("the cat is on a mat"), _words("a cat is on the mat today ok")],
                 [_words("a dog is there"), _words("there is a dog in the house now")]]),
               label="two references of different lengths per sentence",
               catches="the shortest (the hub's) or the longest reference length instead of the "
                       "closest; only the first reference used")
    yield Case(([_words("a b c d e")], [[_words("a b c d"), _words("a b c d e f")]]),
               label="a tie for the closest reference: the shorter one counts",
               catches="a tie broken towards the longer reference")
    yield Case(([_words("a b c d e f g h")], [[_words("a b c d e f g h i j"),
                                              _words("a b c d e f g h i j k l")]]),
               label="short output: the penalty uses the closest reference",
               catches="the shortest or longest reference length; BP upside down")
    yield Case(([_words("the cat sat"), _words("on the mat where the cat sat down")],
                [[_words("the cat sat")], [_words("on the mat the cat sat down today")]]),
               label="a sentence without any 4-gram: its sentence BLEU is 0, the corpus's is not",
               catches="the mean of sentence BLEUs; orders without n-grams skipped")
    yield Case(([_words("a b"), _words("a b c")], [[_words("a b")], [_words("a b c")]]),
               label="no sentence has a 4-gram: BLEU is 0",
               catches="a division by zero; orders without n-grams skipped (effective order)")
    yield Case(([_words("a b"), _words("a b c")], [[_words("a b")], [_words("a b c")]]),
               {"max_order": 2}, label="max_order=2",
               catches="max_order ignored (always 4)")
    yield Case(([_words("the the the the"), _words("cat")], [[_words("the cat")],
                                                            [_words("a cat")]]),
               {"max_order": 1}, label="max_order=1, repeated words",
               catches="matches not clipped; max_order ignored")
    yield Case(([[], _words("the cat sat on the mat today")],
                [[_words("a b")], [_words("the cat sat on the mat")]]),
               label="an empty hypothesis in the corpus",
               catches="a crash on an empty sentence; its reference length left out")
    yield Case(([[], []], [[_words("a b c")], [_words("d e")]]),
               label="every hypothesis empty: BLEU is 0",
               catches="a division by zero in the penalty or the precisions")
    yield Case(([_words("the cat sat on the mat and then it sat on the mat again")],
                [[_words("the cat sat on the mat")]]),
               label="output longer than the reference (BP = 1)",
               catches="exp(1 - r/c) above 1 for long output; long output penalised")
    yield Case(([_words("don't stop café \"now\""), _words("naïve résumé isn't here")],
                [[_words("don't stop café \"now\" please")], [_words("naïve résumé isn't here")]]),
               label="apostrophes, quotes and accents in the tokens",
               catches="tokens changed before counting")
    yield Case(([_words("one two three four five")], [[_words("one two three four five")]]),
               label="one sentence, identical: BLEU is 1", catches="a scale of 0-100")
    hyps, refs = [], []
    for _ in range(37):
        base = _random_tokens(rng, 0, 14, vocab=4)
        hyps.append(base)
        refs.append([_random_tokens(rng, 1, 14, vocab=4)
                     for _ in range(_randint(rng, 1, 3))])
    yield Case((hyps, refs), label="37 random sentences, 1-3 references each",
               catches="any of the above on a real-sized corpus")
    long_ref = _random_tokens(rng, 150, 150, vocab=5)
    yield Case(([long_ref[:97]], [[long_ref, long_ref[:120]]]),
               label="one sentence of 97 tokens against references of 150 and 120",
               catches="the penalty computed from the wrong reference")
    for _ in range(4):
        n = _randint(rng, 1, 9)
        yield Case(([_random_tokens(rng, 0, 10, vocab=3) for _ in range(n)],
                    [[_random_tokens(rng, 1, 10, vocab=3) for _ in range(_randint(rng, 1, 4))]
                     for _ in range(n)]), {"max_order": _randint(rng, 1, 5)},
                   label=f"random corpus of {n} sentences, random max_order",
                   catches="any of the above")


def _closest(c, lengths):
    return min(lengths, key=lambda r: (abs(c - r), r))


def _pooled(hyps, refs, max_order, ref_len=_closest, clip_refs=lambda rs: rs):
    matches, totals, c, r = [0] * max_order, [0] * max_order, 0, 0
    for hyp, sentence_refs in zip(hyps, refs, strict=True):
        c += len(hyp)
        r += ref_len(len(hyp), [len(x) for x in sentence_refs])
        for n in range(1, max_order + 1):
            m, t = bleu_mod.clipped_precision(hyp, clip_refs(sentence_refs), n)
            matches[n - 1] += m
            totals[n - 1] += t
    return matches, totals, c, r


def _bleu_from(matches, totals, c, r, mean="geometric", bp=bleu_mod.brevity_penalty):
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals, strict=True)]
    if mean == "arithmetic":
        score = sum(precisions) / len(precisions)
    elif mean == "skip zero orders":
        kept = [p for p in precisions if p > 0]
        score = math.exp(sum(map(math.log, kept)) / len(kept)) if kept else 0.0
    else:
        score = math.exp(sum(map(math.log, precisions)) / len(precisions)) \
            if min(precisions) > 0 else 0.0
    return score * bp(c, r)


def _cb_sentence_mean(hyps, refs, max_order=4):
    return sum(bleu_mod.corpus_bleu([h], [rs], max_order)
               for h, rs in zip(hyps, refs, strict=True)) / len(hyps)


def _cb_shortest(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order, ref_len=lambda c, ls: min(ls)))


def _cb_longest(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order, ref_len=lambda c, ls: max(ls)))


def _cb_first_ref_length(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order, ref_len=lambda c, ls: ls[0]))


def _cb_tie_longer(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order,
                               ref_len=lambda c, ls: min(ls, key=lambda r: (abs(c - r), -r))))


def _cb_first_ref_only(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order, ref_len=lambda c, ls: ls[0],
                               clip_refs=lambda rs: rs[:1]))


def _cb_arithmetic(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order), mean="arithmetic")


def _cb_effective_order(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order), mean="skip zero orders")


def _cb_no_penalty(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order), bp=lambda c, r: 1.0)


def _cb_uncapped_penalty(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order),
                      bp=lambda c, r: math.exp(1 - r / c) if c else 0.0)


def _cb_inverted_penalty(hyps, refs, max_order=4):
    return _bleu_from(*_pooled(hyps, refs, max_order),
                      bp=lambda c, r: 1.0 if c >= r else math.exp(1 - c / r))


def _cb_always_four(hyps, refs, max_order=4):
    return bleu_mod.corpus_bleu(hyps, refs, 4)


def _cb_percent(hyps, refs, max_order=4):
    return 100 * bleu_mod.corpus_bleu(hyps, refs, max_order)


def _cb_mean_precisions(hyps, refs, max_order=4):
    per_sentence = []
    for h, rs in zip(hyps, refs, strict=True):
        counts = [bleu_mod.clipped_precision(h, rs, n) for n in range(1, max_order + 1)]
        per_sentence.append([m / t if t else 0.0 for m, t in counts])
    precisions = [sum(col) / len(col) for col in zip(*per_sentence, strict=True)]
    _, _, c, r = _pooled(hyps, refs, max_order)
    geo = math.exp(sum(map(math.log, precisions)) / max_order) if min(precisions) > 0 else 0.0
    return geo * bleu_mod.brevity_penalty(c, r)


def _bleu_in_range(got, case: Case):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, int | float) and got > 1 + 1e-9:
        return (f"BLEU here is between 0 and 1, but you returned {got!r}: sacrebleu prints "
                "100 times the score; return the fraction.")
    return None


_SHORTEST = ("The reference length r is, for each sentence, the reference *closest* in length "
             "to the hypothesis (sacrebleu's rule; a tie goes to the shorter one), not the "
             "shortest (the hub's BLEU), the longest or the first.")

register(Exercise(
    id="07.2", title="corpus BLEU (with the brevity penalty)", reference=bleu_mod.corpus_bleu,
    cases=_corpus_bleu_cases, properties=[_bleu_in_range], atol=1e-9, rtol=1e-7,
    hint="Over all sentences, add up each order's clipped matches and n-gram totals (your "
         "clipped_precision), c = the hypothesis lengths and r = the closest reference lengths. "
         "Then precisions p_n = matches / totals (0 when totals is 0), BLEU = "
         "exp(mean of log p_n) * BP, 0 if any p_n is 0; BP = 1 if c >= r, 0 if c = 0, else "
         "exp(1 - r / c).",
    mistakes=[
        (_cb_sentence_mean, "You averaged sentence BLEUs. Corpus BLEU pools the counts: add up "
                            "matches, totals and lengths over all sentences, then take the "
                            "geometric mean once."),
        (_cb_mean_precisions, "You averaged per-sentence precisions. Pool the counts: each "
                              "order's precision is (sum of matches) / (sum of totals)."),
        (_cb_shortest, _SHORTEST),
        (_cb_longest, _SHORTEST),
        (_cb_first_ref_length, _SHORTEST),
        (_cb_tie_longer, "A tie between two references equally close in length goes to the "
                         "shorter one (sacrebleu's and mteval's rule)."),
        (_cb_first_ref_only, "Only the first reference was used: clip against all of them and "
                             "pick the closest reference length."),
        (_cb_arithmetic, "BLEU is the *geometric* mean of the precisions: exp(mean of log p_n)."),
        (_cb_effective_order, "An order with no match (or no n-gram at all) makes BLEU 0; don't "
                              "skip it (that is smoothing's 'effective order', not plain BLEU)."),
        (_cb_no_penalty, "The brevity penalty is missing: multiply by BP = exp(1 - r/c) when "
                         "the corpus is shorter than its references (c < r)."),
        (_cb_uncapped_penalty, "For output longer than the references the penalty must be "
                               "exactly 1: exp(1 - r/c) is above 1 there, so only apply it when "
                               "c < r."),
        (_cb_inverted_penalty, "The penalty's fraction is upside down: the exponent is 1 - r/c "
                               "(reference over translation length)."),
        (_cb_always_four, "max_order was ignored: use orders 1 to max_order."),
        (_cb_percent, "Return BLEU as a fraction between 0 and 1; sacrebleu prints 100 times "
                      "it."),
    ],
))

# --------------------------------------------------------------------------- 07.3 LCS


def _lcs_cases(rng: torch.Generator):
    yield Case((["a", "b", "c"], ["a", "b", "c"]), label="identical",
               catches="off-by-one table (misses the last tokens)")
    yield Case((["a", "a", "b", "c"], ["c", "a", "a", "b"]), label="a repeated token",
               catches="tokens compared at the same position only")
    yield Case((list("ABCBDAB"), list("BDCABA")), label="ABCBDAB vs BDCABA (answer: 4)",
               catches="greedy matching; the longest common substring")
    yield Case(("police killed the gunman".split(), "the gunman police killed".split()),
               label="same words, different order", catches="order ignored (bag of words)")
    yield Case((["a", "a", "a", "b"], ["b", "a", "a", "a"]), label="repeated tokens",
               catches="tokens counted once (a set); greedy matching")
    yield Case(("the cat sat on the mat".split(), "the cat on a mat sat".split()),
               label="gaps are allowed", catches="the longest common substring (no gaps)")
    yield Case(("the cat cat sat".split(), "sat cat cat the".split()),
               label="greedy from either end finds 1, the LCS is 'cat cat'",
               catches="greedy matching in either direction or with two pointers")
    yield Case(("sat cat cat cat the".split(), "the cat cat cat sat".split()),
               label="greedy finds 1, the LCS is 3",
               catches="greedy matching in either direction or with two pointers")
    yield Case(("the sat cat cat a the".split(), "a cat cat the the sat".split()),
               label="greedy finds 2, the LCS is 3",
               catches="greedy matching in either direction or with two pointers")
    yield Case(([], ["a", "b"]), label="empty first sequence", catches="a crash on empty input")
    yield Case((["a", "b"], []), label="empty second sequence", catches="a crash on empty input")
    yield Case(([], []), label="both empty", catches="a crash on empty input")
    yield Case((["a", "b", "c"], ["x", "y"]), label="nothing in common",
               catches="a minimum of 1")
    yield Case((["The", "cat"], ["the", "cat"]), label="tokens compare exactly",
               catches="tokens changed before comparing")
    long = _random_tokens(rng, 60, 60, vocab=5)
    yield Case((long, list(long)), label="identical, 60 tokens",
               catches="off-by-one table; a slow recursion without memoisation")
    for _ in range(6):
        yield Case((_random_tokens(rng, 0, 12, vocab=4), _random_tokens(rng, 1, 12, vocab=4)),
                   label="random sequences", catches="any of the above")
    yield Case((_random_tokens(rng, 40, 40, vocab=6), _random_tokens(rng, 55, 55, vocab=6)),
               label="random, 40 vs 55 tokens", catches="greedy matching on long sequences")


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


def _lcs_greedy_both_ways(a, b):
    return max(_lcs_greedy(a, b), _lcs_greedy(b, a))


def _lcs_same_position(a, b):
    return sum(x == y for x, y in zip(a, b, strict=False))


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
_GREEDY = ("Greedy matching can miss the longest subsequence: compare every prefix pair with "
           "a dynamic-programming table.")


def _not_longer_than_inputs(got, case: Case):
    a, b = case.args
    if isinstance(got, int) and got > min(len(a), len(b)):
        return (f"A common subsequence cannot be longer than the shorter sequence "
                f"({min(len(a), len(b))} tokens), but you returned {got}.")
    return None


def _not_order_blind(got, case: Case):
    a, b = case.args
    if isinstance(got, int) and got in {len(set(a) & set(b)), _lcs_bag(a, b)}:
        return _ORDER_BLIND
    return None


register(Exercise(
    id="07.3", title="longest common subsequence (ROUGE-L)", reference=rouge_mod.lcs_length,
    cases=_lcs_cases, properties=[_not_longer_than_inputs, _not_order_blind],
    hint="Dynamic programming: T[i][j] = T[i-1][j-1] + 1 if a[i-1] == b[j-1], else "
         "max(T[i-1][j], T[i][j-1]); the answer is T[len(a)][len(b)].",
    mistakes=[
        (_lcs_greedy_both_ways, _GREEDY),
        (_lcs_substring, "You found the longest common *substring*; a subsequence keeps the "
                         "order but may skip tokens in between."),
        (_lcs_same_position, "You compared the tokens at the same position only; a "
                             "subsequence may skip tokens in either sequence."),
        (_lcs_bag, _ORDER_BLIND),
        (_lcs_membership, _ORDER_BLIND),
        (_lcs_greedy, _GREEDY),
        (_lcs_short_table, "Off by one: the table needs len(a)+1 rows and len(b)+1 columns, "
                           "and the loops must run up to and including len(a) and len(b)."),
    ],
))

# --------------------------------------------------------------------------- 07.4 ROUGE-L


def _rouge_l_cases(rng: torch.Generator):
    yield Case(("the gunman police killed".split(), "police killed the gunman".split()),
               label="same words, another order: LCS 2 of 4",
               catches="ROUGE-1's unordered overlap instead of the LCS")
    yield Case(("the cat was found under the bed".split(), "the cat was under the bed".split()),
               label="prediction longer than the reference",
               catches="precision and recall swapped; both divided by one length")
    yield Case(("the cat".split(), "the cat was under the bed".split()),
               label="prediction shorter than the reference",
               catches="precision and recall swapped; F over the longer length only")
    yield Case(("a b c d".split(), "a b c d".split()), label="identical: (1, 1, 1)",
               catches="a denominator off by one")
    yield Case(([], ["a", "b"]), label="empty prediction: (0, 0, 0)",
               catches="a division by zero (len(prediction) = 0)")
    yield Case((["a", "b"], []), label="empty reference: (0, 0, 0)",
               catches="a division by zero (len(reference) = 0)")
    yield Case(([], []), label="both empty: (0, 0, 0)", catches="a division by zero")
    yield Case((["x", "y", "z"], ["a", "b"]), label="nothing in common: F is 0, not 0/0",
               catches="F = 2PR / (P + R) with P + R = 0")
    yield Case((["the"] * 5, ["the", "cat", "the"]), label="a repeated token",
               catches="tokens matched more often than they occur in the reference")
    yield Case((["don't", "stop", "café"], ["café", "don't", "stop"]),
               label="apostrophes and accents", catches="tokens changed before comparing")
    yield Case((["a"], ["a"] + ["b"] * 12), label="one token against thirteen",
               catches="the arithmetic mean instead of the harmonic; beta other than 1")
    for low, high in ((1, 6), (1, 6), (5, 25), (30, 60)):
        yield Case((_random_tokens(rng, low, high, vocab=5),
                    _random_tokens(rng, low, high + 40, vocab=5)),
                   label=f"random, {low}-{high} tokens", catches="any of the above")
    yield Case((_random_tokens(rng, 173, 173, vocab=7), _random_tokens(rng, 41, 41, vocab=7)),
               label="random, 173 vs 41 tokens", catches="precision and recall swapped")


def _rl_parts(prediction, reference, lcs=None):
    if lcs is None:
        lcs = rouge_mod.lcs_length(prediction, reference)
    return lcs, len(prediction), len(reference)


def _harmonic(p, r):
    return 2 * p * r / (p + r) if p + r else 0.0


def _rl_swapped(prediction, reference):
    lcs, m, n = _rl_parts(prediction, reference)
    p, r = (lcs / n if n else 0.0), (lcs / m if m else 0.0)
    return (p, r, _harmonic(p, r)) if m and n else (0.0, 0.0, 0.0)


def _rl_arithmetic(prediction, reference):
    p, r, _ = rouge_mod.rouge_l_scores(prediction, reference)
    return p, r, (p + r) / 2


def _rl_beta(prediction, reference, beta=1.2):
    p, r, _ = rouge_mod.rouge_l_scores(prediction, reference)
    f = (1 + beta ** 2) * p * r / (r + beta ** 2 * p) if p and r else 0.0
    return p, r, f


def _rl_longer_length(prediction, reference):
    lcs, m, n = _rl_parts(prediction, reference)
    score = lcs / max(m, n) if max(m, n) else 0.0
    return score, score, score


def _rl_unigram_overlap(prediction, reference):
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    overlap = sum((Counter(prediction) & Counter(reference)).values())
    p, r = overlap / len(prediction), overlap / len(reference)
    return p, r, _harmonic(p, r)


def _rl_reference_length_only(prediction, reference):
    lcs, m, n = _rl_parts(prediction, reference)
    score = lcs / n if n and m else 0.0
    return score, score, score


def _rl_plus_one(prediction, reference):
    lcs, m, n = _rl_parts(prediction, reference)
    p, r = lcs / (m + 1), lcs / (n + 1)
    return p, r, _harmonic(p, r)


def _rl_in_range(got, case: Case):
    if isinstance(got, tuple | list) and len(got) == 3 and all(
            isinstance(x, int | float) for x in got):
        if any(x > 1 + 1e-9 or x < 0 for x in got):
            return f"Precision, recall and F are each between 0 and 1, but you returned {got!r}."
    return None


register(Exercise(
    id="07.4", title="ROUGE-L precision, recall and F", reference=rouge_mod.rouge_l_scores,
    cases=_rouge_l_cases, properties=[_rl_in_range], atol=1e-9, rtol=1e-7,
    hint="With L = lcs_length(prediction, reference): precision = L / len(prediction), recall = "
         "L / len(reference), F = 2 P R / (P + R); all three are 0 when either list is empty or "
         "L is 0. Return (precision, recall, F).",
    mistakes=[
        (_rl_swapped, "Precision and recall are swapped: precision divides the LCS by the "
                      "*prediction's* length (how much of what you said is right), recall by "
                      "the reference's."),
        (_rl_arithmetic, "F is the *harmonic* mean 2PR / (P + R), not (P + R) / 2."),
        (_rl_beta, "rouge-score's F uses beta = 1, F = 2PR / (P + R); beta = 1.2 is "
                   "pycocoevalcap's ROUGE-L, which gives other numbers."),
        (_rl_longer_length, "Precision and recall have different denominators (the "
                            "prediction's and the reference's length); F is their harmonic "
                            "mean, not LCS over the longer length."),
        (_rl_unigram_overlap, "You counted shared tokens regardless of order (ROUGE-1); ROUGE-L "
                              "uses the longest common subsequence, lcs_length."),
        (_rl_reference_length_only, "Precision divides by the prediction's length, recall by "
                                    "the reference's: they differ when the lengths differ."),
        (_rl_plus_one, "Off by one: divide by len(prediction) and len(reference), not one more "
                       "(that is the LCS table's size, not the lengths)."),
    ],
))


# --------------------------------------------------------------------------- 07.5 perplexity


def _ppl_cases(rng: torch.Generator):
    def logprobs(*shape, low=0.0, high=6.0):
        return -(low + torch.rand(*shape, generator=rng) * (high - low))

    def lengths_mask(lengths, width):
        return (torch.arange(width) < torch.tensor(lengths)[:, None]).long()

    vocab = 50
    yield Case((torch.full((1, 6), -math.log(vocab)), torch.ones(1, 6)),
               label=f"uniform guess over {vocab} tokens: perplexity {vocab}",
               catches="exp(mean log p) without the minus (gives 1/50); base 2")
    yield Case((logprobs(1, 5), torch.ones(1, 5, dtype=torch.long)), label="one sequence",
               catches="the mean of per-token exp(-log p)")
    lp = logprobs(3, 6)
    mask = lengths_mask([6, 4, 2], 6)
    lp[mask == 0] = -4.5  # padding holds whatever the model put there
    yield Case((lp, mask), label="padded batch: masked positions must not count",
               catches="padding averaged in; divided by the padded length; one number for the "
                       "whole batch")
    yield Case((logprobs(2, 4), torch.tensor([[True, True, True, False],
                                              [True, False, False, False]])),
               label="boolean mask", catches="arithmetic that needs a 0/1 number mask")
    yield Case((logprobs(2, 7).double(), torch.ones(2, 7)), label="float64",
               catches="the result cast to float32")
    yield Case((logprobs(2, 5),), {"mask": None}, label="mask=None: every token counts",
               catches="mask=None not handled")
    lp = logprobs(3, 5)
    mask = lengths_mask([5, 3, 1], 5)
    yield Case((lp.masked_fill(mask == 0, float("-inf")), mask),
               label="padding holds -inf (a padded position's log-probability)",
               catches="log-probs multiplied by the mask: -inf * 0 is NaN")
    lp = logprobs(2, 6)
    mask = lengths_mask([4, 6], 6)
    yield Case((lp.masked_fill(mask == 0, float("nan")), mask.float()),
               label="padding holds NaN, the mask is float 0./1.",
               catches="log-probs multiplied by the mask: NaN * 0 is NaN")
    lp = logprobs(2, 4)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]], dtype=torch.uint8)
    yield Case((lp.masked_fill(mask == 0, float("-inf")), mask),
               label="a uint8 mask with holes at both ends",
               catches="~mask on a number mask (bitwise not, not logical not); padding "
                       "assumed at the end")
    yield Case((logprobs(3, 1), torch.ones(3, 1, dtype=torch.long)), label="one token per row",
               catches="a sum over the wrong dimension; squeezing away the batch")
    lp = logprobs(2, 3)
    mask = torch.tensor([[1, 1, 1], [0, 0, 0]])
    yield Case((lp, mask), label="a row with no real token: its perplexity is NaN (0 / 0)",
               catches="the count clamped to 1 (invents a perplexity of 1 from no tokens)")
    yield Case((logprobs(2, 64, low=4.0, high=6.0), torch.ones(2, 64, dtype=torch.long)),
               label="64 tokens: the product of 1/p overflows float32",
               catches="the geometric mean as a product of probabilities")
    yield Case((torch.tensor([[-1e-7] * 4, [-30.0] * 4]), torch.ones(2, 4)),
               label="a confident row (perplexity 1) and a hopeless one (e^30)",
               catches="rounding or clamping of extreme log-probabilities")
    for _ in range(3):
        batch, width = 5, 9
        lengths = torch.randint(1, width + 1, (batch,), generator=rng).tolist()
        mask = lengths_mask(lengths, width)
        garbage = torch.tensor([float("-inf"), float("nan"), 3.0, -1e30])
        fill = garbage[torch.randint(0, 4, (batch, width), generator=rng)]
        lp = torch.where(mask.bool(), logprobs(batch, width), fill)
        yield Case((lp, mask), label="random padded batch, padding holds -inf, NaN, 3, -1e30",
                   catches="padding that takes part in any arithmetic")


def _ppl_sums(lp, mask, multiply=False):
    """(sum of log-probs over real tokens, number of real tokens), per row."""
    keep = torch.ones_like(lp, dtype=torch.bool) if mask is None else mask.bool()
    if multiply:  # the learner's way: padding * 0, which is NaN when padding is -inf or NaN
        total = (lp * keep.to(lp.dtype)).sum(-1)
    else:
        total = lp.masked_fill(~keep, 0.0).sum(-1)
    return total, keep.sum(-1).to(lp.dtype), keep


def _ppl_no_negation(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(token_logprobs, mask)
    return (total / count).exp()


def _ppl_mask_ignored(token_logprobs, mask=None):
    return (-token_logprobs.mean(-1)).exp()


def _ppl_times_mask(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(token_logprobs, mask, multiply=True)
    return (-total / count).exp()


def _ppl_full_length(token_logprobs, mask=None):
    total, _, _ = _ppl_sums(token_logprobs, mask, multiply=True)
    return (-total / token_logprobs.shape[-1]).exp()


def _ppl_full_length_where(token_logprobs, mask=None):
    total, _, _ = _ppl_sums(token_logprobs, mask)
    return (-total / token_logprobs.shape[-1]).exp()


def _ppl_mean_of_exp(token_logprobs, mask=None):
    _, count, keep = _ppl_sums(token_logprobs, mask)
    return ((-token_logprobs).exp() * keep.to(token_logprobs.dtype)).sum(-1) / count


def _ppl_base2(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(token_logprobs, mask)
    return 2 ** (-total / count)


def _ppl_pooled(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(token_logprobs, mask, multiply=True)
    nll = -total.sum() / count.sum()
    return nll.exp().expand(token_logprobs.shape[0]).clone()


def _ppl_log_again(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(-torch.log(token_logprobs), mask)
    return (-total / count).exp()


def _ppl_count_clamped(token_logprobs, mask=None):
    total, count, _ = _ppl_sums(token_logprobs, mask)
    return (-total / count.clamp(min=1)).exp()


def _at_least_one(got, case: Case):
    if isinstance(got, torch.Tensor) and got.is_floating_point() and bool((got < 1 - 1e-6).any()):
        return ("A perplexity is never below 1 (log-probabilities are <= 0): did you forget the "
                "minus sign in exp(-mean log p)?")
    return None


def _padding_left_alone(got, case: Case):
    lp, mask = case.args[0], (case.args[1] if len(case.args) > 1 else None)
    if mask is None or not isinstance(got, torch.Tensor) or got.shape != lp.shape[:1]:
        return None
    keep = mask.bool()
    real_rows = keep.any(-1)
    bad_padding = (~torch.isfinite(lp) & ~keep).any(-1)
    if bool((got.isnan() & real_rows & bad_padding).any()):
        return ("NaN in a row that has real tokens: its padding holds -inf or NaN, and "
                "-inf * 0 and NaN * 0 are NaN. Choose the real positions with "
                "token_logprobs.masked_fill(~mask.bool(), 0.0) or torch.where instead of "
                "multiplying by the mask.")
    return None


def _empty_row_is_nan(got, case: Case):
    mask = case.args[1] if len(case.args) > 1 else None
    if mask is None or not isinstance(got, torch.Tensor) or got.shape != mask.shape[:1]:
        return None
    empty = ~mask.bool().any(-1)
    if bool((empty & ~got.isnan()).any()):
        return ("A row whose mask is all 0 has no tokens to average over: its perplexity is "
                "undefined, NaN (0 / 0 gives it). Don't clamp the count or invent a value.")
    return None


_PADDING_NAN = ("Multiplying by the mask does not remove padding that holds -inf or NaN: "
                "-inf * 0 and NaN * 0 are NaN. Choose the real positions with "
                "token_logprobs.masked_fill(~mask.bool(), 0.0) or torch.where.")
_FULL_LENGTH = ("You divided by the padded length; divide by the number of real tokens, "
                "mask.sum(-1).")

register(Exercise(
    id="07.5", title="perplexity from token log-probabilities",
    reference=ppl_mod.perplexity_from_logprobs, cases=_ppl_cases,
    hint="For each row: exp(-(sum of log-probs where mask is 1) / (number of 1s in the mask)). "
         "Padding may hold -inf or NaN, so select the real positions (masked_fill or "
         "torch.where) rather than multiplying by the mask. mask=None means every position "
         "counts. Return a (batch,) tensor.",
    properties=[_at_least_one, _padding_left_alone, _empty_row_is_nan],
    mistakes=[
        (_ppl_count_clamped, "A row whose mask is all 0 has no tokens to average over: its "
                             "perplexity is undefined, NaN (0 / 0 gives it). Don't clamp the "
                             "count to 1."),
        (_ppl_times_mask, _PADDING_NAN),
        (_ppl_full_length, _FULL_LENGTH),
        (_ppl_full_length_where, _FULL_LENGTH),
        (_ppl_mask_ignored, "Padding was averaged in: only positions where mask is 1 count, in "
                            "the sum and in the number of tokens."),
        (_ppl_pooled, "Every row got the same number, pooled over the batch: compute one "
                      "perplexity per sequence (sum over dim=-1)."),
        (_ppl_mean_of_exp, "You averaged per-token perplexities exp(-log p); perplexity is "
                           "exp of the *mean* negative log-probability."),
        (_ppl_no_negation, "exp(mean log p) is 1 / perplexity: negate the mean log-probability "
                           "(the mean negative log-likelihood) before exp."),
        (_ppl_base2, "The log-probabilities are natural logs, so use exp(), not 2 ** x."),
        (_ppl_log_again, "token_logprobs are already log-probabilities: don't take their log "
                         "again (the log of a negative number is NaN)."),
    ],
))


# --------------------------------------------------------------------------- 07.6 kappa

_FIVE = [1, 2, 3, 4, 5]


def _kappa_cases(rng: torch.Generator):
    yes_no_a = ["yes"] * 25 + ["no"] * 25
    yes_no_b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    yield Case((yes_no_a, yes_no_b, ["no", "yes"]), label="yes/no, p_o = .70, p_e = .50",
               catches="p_o returned (no chance correction); p_e from pooled marginals "
                       "(Scott's pi) or 1/k (uniform)")
    a3 = [1, 1, 2, 2, 3, 3, 3, 1, 2, 3]
    b3 = [1, 2, 2, 2, 3, 3, 1, 1, 2, 2]
    yield Case((a3, b3, [1, 2, 3]), label="three labels, unweighted",
               catches="p_e from one rater's marginals; weights applied when weights=None")
    yield Case((a3, b3, [1, 2, 3]), {"weights": "linear"}, label="three labels, linear weights",
               catches="weights ignored; linear and quadratic swapped")
    r1 = [3, 2, 1, 5, 4, 4, 2, 5, 3, 1, 4, 2]
    r2 = [4, 2, 1, 4, 4, 3, 1, 5, 2, 1, 5, 3]
    for w in (None, "linear", "quadratic"):
        yield Case((r1, r2, _FIVE), {"weights": w}, label=f"1-5 ratings, weights={w}",
                   catches="the wrong weights; no chance correction")
    yield Case(([1, 1, 2, 5, 5, 2], [1, 2, 2, 5, 1, 1], _FIVE), {"weights": "linear"},
               label="3 and 4 unused: distances are positions in the whole scale",
               catches="weights over the labels used instead of the scale")
    yield Case(([2, 4, 4, 1, 5], [2, 4, 4, 1, 5], _FIVE), {"weights": "quadratic"},
               label="perfect agreement: 1", catches="a division by zero; a kappa above 1")
    yield Case(([4] * 6, [4] * 6, _FIVE), label="one label only: p_e = 1, kappa is NaN (0/0)",
               catches="1 (or 0) returned for 0/0; a ZeroDivisionError")
    yield Case(([4] * 6, [4] * 6, _FIVE), {"weights": "linear"},
               label="one label only, weighted: NaN", catches="1 or 0 returned for 0/0")
    yield Case(([3], [3], _FIVE), label="a single item: NaN", catches="1 returned for 0/0")
    yield Case(([4] * 5, [3] * 5, _FIVE), {"weights": "quadratic"},
               label="each rater one label, different ones: kappa 0",
               catches="NaN where chance disagreement is not 0")
    yield Case(([1, 2, 1, 2], [2, 1, 2, 1], [1, 2]), label="always disagreeing: -1",
               catches="a kappa clamped at 0")
    zero_a = [0, 0, 1, 2, 3, 4, 0, 4, 2, 1]
    zero_b = [0, 1, 1, 2, 4, 4, 0, 3, 2, 0]
    yield Case((zero_a, zero_b, [0, 1, 2, 3, 4]), label="labels 0-4 (0 is falsy)",
               catches="items rated 0 dropped (if x:); a 1-based scale assumed")
    yield Case((zero_a, zero_b, [0, 1, 2, 3, 4]), {"weights": "linear"},
               label="labels 0-4, linear", catches="items rated 0 dropped; values as positions")
    bad_good = ["bad", "ok", "good", "good", "ok", "bad", "good", "ok"]
    other = ["ok", "ok", "good", "ok", "ok", "bad", "good", "bad"]
    yield Case((bad_good, other, ["bad", "ok", "good"]), {"weights": "quadratic"},
               label="ordinal words: the order is the labels' order, not the alphabet's",
               catches="labels sorted instead of taken in the given order")
    yield Case(([True, False, True, True], [True, True, False, True], [False, True]),
               label="booleans", catches="False dropped as falsy")
    yield Case((np.array(r1), np.array(r2), _FIVE), {"weights": "linear"},
               label="numpy arrays of ratings", catches="code that only takes lists")
    base = torch.randint(1, 6, (501,), generator=rng)
    noise = torch.randint(-1, 2, (501,), generator=rng)
    other = (base + noise).clamp(1, 5)
    for w in (None, "quadratic"):
        yield Case((base.tolist(), other.tolist(), _FIVE), {"weights": w},
                   label=f"501 random ratings, weights={w}", catches="any of the above")


def _k_tables(a, b, labels):
    a, b = list(a), list(b)
    pos = {label: i for i, label in enumerate(labels)}
    n = len(a)
    pairs = Counter((pos[x], pos[y]) for x, y in zip(a, b, strict=True))
    return n, pairs, Counter(pos[x] for x in a), Counter(pos[y] for y in b), len(labels)


def _k_weight(weights):
    if weights == "linear":
        return lambda i, j: abs(i - j)
    if weights == "quadratic":
        return lambda i, j: (i - j) ** 2
    return lambda i, j: float(i != j)


def _k_general(a, b, labels, weights=None, chance="product", on_nan=math.nan):
    n, pairs, ca, cb, k = _k_tables(a, b, labels)
    w = _k_weight(weights)
    observed = sum(w(i, j) * c for (i, j), c in pairs.items()) / n
    if chance == "pooled":
        pool = ca + cb
        ca = cb = Counter({i: c / 2 for i, c in pool.items()})
    elif chance == "first":
        cb = ca
    if chance == "uniform":
        expected = sum(w(i, j) for i in range(k) for j in range(k)) / (k * k)
    else:
        expected = sum(w(i, j) * x * y for i, x in ca.items() for j, y in cb.items()) / (n * n)
    if abs(expected) < 1e-15:
        return on_nan
    return 1.0 - observed / expected


def _k_pooled(a, b, labels, weights=None):
    return _k_general(a, b, labels, weights, chance="pooled")


def _k_uniform(a, b, labels, weights=None):
    return _k_general(a, b, labels, weights, chance="uniform")


def _k_first_rater(a, b, labels, weights=None):
    return _k_general(a, b, labels, weights, chance="first")


def _k_accuracy(a, b, labels, weights=None):
    return sum(x == y for x, y in zip(list(a), list(b), strict=True)) / len(a)


def _k_unweighted(a, b, labels, weights=None):
    return _k_general(a, b, labels, None)


def _k_swapped(a, b, labels, weights=None):
    other = {"linear": "quadratic", "quadratic": "linear"}.get(weights)
    return _k_general(a, b, labels, other)


def _k_used_labels(a, b, labels, weights=None):
    used = [label for label in labels if label in set(list(a) + list(b))]
    return _k_general(a, b, used, weights)


def _k_sorted(a, b, labels, weights=None):
    return _k_general(a, b, sorted(labels, key=str), weights)


def _k_one_when_undefined(a, b, labels, weights=None):
    return _k_general(a, b, labels, weights, on_nan=1.0)


def _k_zero_when_undefined(a, b, labels, weights=None):
    return _k_general(a, b, labels, weights, on_nan=0.0)


def _k_falsy_dropped(a, b, labels, weights=None):
    kept = [(x, y) for x, y in zip(list(a), list(b), strict=True) if x and y]
    if not kept:
        return math.nan
    return _k_general([x for x, _ in kept], [y for _, y in kept], labels, weights)


def _k_in_range(got, case: Case):
    if isinstance(got, int | float) and not math.isnan(got) and got > 1 + 1e-9:
        return f"Kappa is at most 1 (perfect agreement), but you returned {got!r}."
    return None


_UNDEFINED = ("When both raters gave one and the same label to every item, chance agreement "
              "is already 1 and kappa is 0/0: return NaN (float('nan')), as sklearn does; it is "
              "neither perfect agreement nor chance level.")

register(Exercise(
    id="07.6", title="Cohen's kappa, plain and weighted", reference=agreement_mod.cohen_kappa,
    cases=_kappa_cases, properties=[_k_in_range], atol=1e-9, rtol=1e-7,
    hint="Let i, j be the positions of the two labels in `labels`. Weights: w = 0 if i == j else 1 "
         "(weights=None), |i - j| (linear), (i - j) ** 2 (quadratic). Observed = mean of w over "
         "the items; expected = sum over label pairs of w * (rater a's share of i) * (rater b's "
         "share of j). kappa = 1 - observed / expected, NaN when expected is 0.",
    mistakes=[
        (_k_accuracy, "That is the observed agreement p_o; kappa corrects it for chance: "
                      "(p_o - p_e) / (1 - p_e)."),
        (_k_pooled, "Chance agreement uses each rater's own label shares, multiplied (rater a's "
                    "share of a label times rater b's), not the two raters pooled (that is "
                    "Scott's pi)."),
        (_k_uniform, "Chance agreement uses the raters' own label shares, not 1 / (number of "
                     "labels): a rater who says 4 most of the time agrees with 4 by chance "
                     "often."),
        (_k_first_rater, "Chance agreement multiplies rater a's share of each label by rater "
                         "b's, not rater a's by itself."),
        (_k_unweighted, "The weights were ignored: with weights='linear' a disagreement costs "
                        "|i - j|, with 'quadratic' (i - j) ** 2."),
        (_k_swapped, "Linear and quadratic are swapped: linear weights are |i - j|, quadratic "
                     "(i - j) ** 2."),
        (_k_used_labels, "The distance between two labels is the distance of their positions in "
                         "the whole scale `labels`, also when some labels were never used."),
        (_k_sorted, "Take the labels in the order given (the scale, lowest to highest), not "
                    "sorted: 'bad', 'ok', 'good' is not alphabetical."),
        (_k_one_when_undefined, _UNDEFINED),
        (_k_zero_when_undefined, _UNDEFINED),
        (_k_falsy_dropped, "Items rated 0 (or False) were dropped: `if x` is false for 0; "
                           "compare labels with ==, keep every item."),
    ],
))
