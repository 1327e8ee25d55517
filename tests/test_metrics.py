"""course_utils.metrics: BLEU against sacrebleu, ROUGE against rouge-score, kappa and intervals
against hand-worked textbook numbers.

Where the definitions differ on purpose (reference length, smoothing of unigrams, ROUGE's
bootstrap aggregate) the comment at the test says how, and the test checks the documented
difference instead of skipping the case.
"""

from __future__ import annotations

import math
import random
import re
import statistics

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from course_utils.metrics import (
    bleu,
    brevity_penalty,
    clipped_precision,
    cohen_kappa,
    corpus_bleu,
    corpus_bleu_stats,
    mean_ci,
    precision_recall_at,
    rouge,
    t_quantile,
    tokenize_13a,
)

# (predictions, references): references are lists of one or more strings per prediction.
BATTERY = {
    "identical": (["the cat sat on the mat"], [["the cat sat on the mat"]]),
    "disjoint": (["a dog barked loudly"], [["the cat sat on the mat"]]),
    "empty hypothesis in a corpus": (["", "the cat sat on the mat today"],
                                     [["a cat sat there"], ["the cat sat on the mat"]]),
    "only an empty hypothesis": ([""], [["the cat sat on the mat"]]),
    "short hypotheses (shorter than 4-grams)": (["the cat", "sat", "on the mat"],
                                                [["the cat sat"], ["it sat down"],
                                                 ["on the red mat"]]),
    "longer than the reference": (["the cat sat on the mat and then it sat on the mat again"],
                                  [["the cat sat on the mat"]]),
    "punctuation and numbers": (
        ['Hello, world! It\'s 3.14 -- isn\'t it? "Yes": 1,000 people (5-4).',
         "e.g. the U.S.A.; tom&jerry &amp; co/op"],
        [["Hello world, it's 3.14 - isn't it? Yes: 1,000 people, 5-4."],
         ["e.g. the USA; tom & jerry & co / op"]]),
    "unicode": (["Die Größe des Cafés ist schön 😀", "日本語 の テスト です"],
                [["Die Größe des Cafés war schön 😀 !"], ["日本語 の テスト"]]),
    "multiple references": (
        ["the cat is on the mat", "there is a dog in the park today"],
        [["the cat sat on the mat", "there is a cat on the mat", "a cat is on a mat"],
         ["a dog is in the park", "there is a dog in the park"]]),
    "variable number of references": (
        ["the cat is on the mat", "a red bird sang"],
        [["the cat sat on the mat", "there is a cat on the mat"], ["the red bird sang loudly"]]),
    "repeated words (clipping)": (["the the the the the the the"],
                                  [["the cat is on the mat", "there is a cat on the mat"]]),
    "newlines and hyphenation": (["the long-\nterm plan\nworks well"],
                                 [["the longterm plan works well enough"]]),
}


def _streams(refs: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; None marks a missing reference."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def _sacre(preds, refs, **kw):
    return sacrebleu.corpus_bleu(preds, _streams(refs), tokenize="13a", force=True, **kw)


@pytest.mark.parametrize("name", list(BATTERY))
def test_tokenize_13a_matches_sacrebleu(name):
    preds, refs = BATTERY[name]
    for text in preds + [r for rs in refs for r in rs]:
        assert tokenize_13a(text) == Tokenizer13a()(text.rstrip()).split()


@pytest.mark.parametrize("name", list(BATTERY))
def test_bleu_matches_sacrebleu_without_smoothing(name):
    """ref_length="closest" is sacrebleu's effective reference length; smooth_method="none"."""
    preds, refs = BATTERY[name]
    ours = bleu(preds, refs, ref_length="closest")
    ref = _sacre(preds, refs, smooth_method="none")
    assert ours["bleu"] == pytest.approx(ref.score / 100, abs=1e-6)
    assert ours["precisions"] == pytest.approx([p / 100 for p in ref.precisions], abs=1e-6)
    assert ours["brevity_penalty"] == pytest.approx(ref.bp, abs=1e-6)
    assert ours["translation_length"] == ref.sys_len
    assert ours["reference_length"] == ref.ref_len
    assert ours["length_ratio"] == pytest.approx(ref.sys_len / ref.ref_len, abs=1e-9)


@pytest.mark.parametrize("name", list(BATTERY))
def test_default_reference_length_is_the_shortest(name):
    """evaluate's BLEU (tensorflow/nmt) uses the shortest reference, sacrebleu the closest one.

    Everything but the reference length and the brevity penalty is the same, so we rebuild
    the expected score from sacrebleu's n-gram counts and the shortest lengths.
    """
    preds, refs = BATTERY[name]
    ours = bleu(preds, refs)
    ref = _sacre(preds, refs, smooth_method="none")
    shortest = sum(min(len(Tokenizer13a()(r).split()) for r in rs) for rs in refs)
    assert ours["reference_length"] == shortest
    assert ours["translation_length"] == ref.sys_len
    bp = 1.0 if ref.sys_len >= shortest else (
        math.exp(1 - shortest / ref.sys_len) if ref.sys_len else 0.0)
    precisions = [c / t if t else 0.0 for c, t in zip(ref.counts, ref.totals, strict=True)]
    geo = math.exp(sum(map(math.log, precisions)) / 4) if min(precisions) > 0 else 0.0
    assert ours["brevity_penalty"] == pytest.approx(bp, abs=1e-9)
    assert ours["bleu"] == pytest.approx(geo * bp, abs=1e-6)


@pytest.mark.parametrize("name", list(BATTERY))
def test_smoothed_bleu_is_add_one_on_every_order(name):
    """smooth=True is Lin and Och's add-one on every n-gram order (as in evaluate's BLEU).

    sacrebleu's add-k leaves unigram precision unsmoothed, so the two agree only where every
    unigram matches; elsewhere we rebuild the add-one score from sacrebleu's counts.
    """
    preds, refs = BATTERY[name]
    ours = bleu(preds, refs, smooth=True, ref_length="closest")
    ref = _sacre(preds, refs, smooth_method="none")
    precisions = [(c + 1) / (t + 1) for c, t in zip(ref.counts, ref.totals, strict=True)]
    expected = math.exp(sum(map(math.log, precisions)) / 4) * ref.bp
    assert ours["precisions"] == pytest.approx(precisions, abs=1e-9)
    assert ours["bleu"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("pred, ref", [
    ("mat the on sat cat the", "the cat sat on the mat"),
    ("cat sat the", "the cat sat on the mat"),
    ("on the mat the cat sat", "the cat sat on the mat"),
])
def test_smoothed_bleu_equals_sacrebleu_add_one_when_all_unigrams_match(pred, ref):
    ours = bleu([pred], [ref], smooth=True, ref_length="closest")
    theirs = sacrebleu.corpus_bleu([pred], [[ref]], smooth_method="add-k", smooth_value=1,
                                   tokenize="13a")
    assert ours["bleu"] == pytest.approx(theirs.score / 100, abs=1e-6)


def test_bleu_papineni_example_by_hand():
    # Papineni et al. (2002), section 2.1.1: modified unigram precision 2/7.
    refs = [["the", "cat", "is", "on", "the", "mat"],
            ["there", "is", "a", "cat", "on", "the", "mat"]]
    assert clipped_precision(["the"] * 7, refs, 1) == (2, 7)
    out = bleu(["the the the the the the the"],
               [["the cat is on the mat", "there is a cat on the mat"]], max_order=1)
    assert out["precisions"] == [pytest.approx(2 / 7)]
    assert out["bleu"] == pytest.approx(2 / 7)  # 7 tokens vs shortest ref 6: no penalty


def test_brevity_penalty_by_hand():
    assert brevity_penalty(10, 10) == 1.0
    assert brevity_penalty(20, 10) == 1.0
    assert brevity_penalty(5, 10) == pytest.approx(math.exp(-1))
    assert brevity_penalty(0, 10) == 0.0


def _sacrebleu_tokens(hyps, refs, max_order=4):
    """sacrebleu on token lists: tokenize="none" splits on whitespace, so join with spaces."""
    streams = [[" ".join(rs[k]) if k < len(rs) else None for rs in refs]
               for k in range(max(map(len, refs)))]
    return sacrebleu.BLEU(tokenize="none", smooth_method="none",
                          max_ngram_order=max_order).corpus_score([" ".join(h) for h in hyps],
                                                                  streams)


@pytest.mark.parametrize("n_sentences, max_len, n_refs, max_order, seed", [
    (1, 1, 1, 4, 0), (1, 300, 1, 4, 1), (3, 5, 7, 4, 2), (257, 9, 2, 4, 3), (61, 40, 3, 1, 4),
    (13, 17, 4, 6, 5), (1000, 6, 1, 2, 6),
])
def test_corpus_bleu_matches_sacrebleu_on_unusual_sizes(n_sentences, max_len, n_refs,
                                                        max_order, seed):
    rng = random.Random(seed)
    vocab = ["a", "b", "c", "d", "é", "don't"][:rng.randint(2, 6)]

    def sentence(low):
        return [rng.choice(vocab) for _ in range(rng.randint(low, max_len))]

    hyps = [sentence(0) for _ in range(n_sentences)]
    refs = [[sentence(1) for _ in range(rng.randint(1, n_refs))] for _ in range(n_sentences)]
    theirs = _sacrebleu_tokens(hyps, refs, max_order)
    ours = corpus_bleu_stats(hyps, refs, max_order)
    assert corpus_bleu(hyps, refs, max_order) == pytest.approx(theirs.score / 100, abs=1e-12)
    assert ours["translation_length"] == theirs.sys_len
    assert ours["reference_length"] == theirs.ref_len
    assert ours["brevity_penalty"] == pytest.approx(theirs.bp, abs=1e-12)


def test_corpus_bleu_is_not_the_mean_of_sentence_bleus():
    hyps = [["the", "cat", "sat"], "on the mat where the cat sat down".split()]
    refs = [[["the", "cat", "sat"]], ["on the mat the cat sat down today".split()]]
    sentence = [_sacrebleu_tokens([h], [r]).score / 100 for h, r in zip(hyps, refs, strict=True)]
    assert sentence[0] == 0.0  # no 4-gram in a three-token sentence
    assert corpus_bleu(hyps, refs) == pytest.approx(_sacrebleu_tokens(hyps, refs).score / 100)
    assert corpus_bleu(hyps, refs) > sum(sentence) / 2


def test_corpus_bleu_rejects_mismatched_input():
    with pytest.raises(ValueError, match="one list of references per hypothesis"):
        corpus_bleu([["a"]], [])
    with pytest.raises(ValueError, match="no reference"):
        corpus_bleu([["a"]], [[]])


def test_bleu_accepts_plain_string_references():
    assert bleu(["the cat sat"], ["the cat sat"]) == bleu(["the cat sat"], [["the cat sat"]])


@pytest.mark.parametrize("preds, refs, error, words", [
    ("the cat", ["the cat"], TypeError, "wrap it in a list"),
    ([], [], ValueError, "empty"),
    (["a", "b"], [["a"]], ValueError, "2 predictions but 1 references"),
    ([None], [["a"]], TypeError, "predictions[0]"),
    (["a"], [[]], ValueError, "non-empty list"),
    (["a"], [["a", 3]], TypeError, "references[0][1]"),
    (["a"], [""], ValueError, "every reference is empty"),
])
def test_bleu_rejects_bad_input(preds, refs, error, words):
    with pytest.raises(error, match=re.escape(words)):
        bleu(preds, refs)


def test_bleu_rejects_bad_options():
    with pytest.raises(ValueError, match="max_order"):
        bleu(["a"], ["a"], max_order=0)
    with pytest.raises(ValueError, match="ref_length"):
        bleu(["a"], ["a"], ref_length="longest")


# --------------------------------------------------------------------------- ROUGE

ROUGE_BATTERY = [
    ("the cat sat on the mat", "the cat sat on the mat"),                  # identical
    ("a dog barked", "the cat sat on the mat"),                            # disjoint
    ("", "the cat sat on the mat"),                                        # empty prediction
    ("the cat", ""),                                                       # empty reference
    ("", ""),
    ("cat", "the cat sat"),                                                # one word
    ("Hello, World!! It's 3.14... isn't it?", "hello world its 3 14 isnt it"),  # punctuation
    ("Die Größe des Cafés ist schön", "Die Grosse des Cafes ist schoen"),  # unicode vanishes
    ("日本語のテスト", "日本語のテスト"),                                      # nothing left
    ("İstanbul naïve café", "istanbul naive cafe"),
    ("the runner was running and runs quickly", "runners run quick races"),  # stemming
    ("the the the cat", "the cat the"),                                    # repeated words
    ("police killed the gunman", "the gunman killed police"),              # order matters
    ("the cat sat.\nthe dog ran.", "the dog ran.\nthe cat sat."),          # rougeLsum lines
    ("a b c d\ne f a b\n\nc d", "a b e f\nc d a b\na c"),                  # union LCS
    ("one line summary of the day", "one line\nsummary of\nthe day"),
]
TYPES = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]


def _random_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "runs", "running"]

    def text():
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 14))]
        return " ".join(w + ("\n" if rng.random() < 0.2 else "") for w in words)

    return [(text(), text()) for _ in range(n)]


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_matches_rouge_score_per_pair(use_stemmer):
    pairs = ROUGE_BATTERY + _random_pairs(150)
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=use_stemmer)
    ours = rouge([p for p, _ in pairs], [r for _, r in pairs], rouge_types=TYPES,
                 use_stemmer=use_stemmer, use_aggregator=False)
    for i, (pred, ref) in enumerate(pairs):
        expected = scorer.score(ref, pred)  # rouge-score takes (target, prediction)
        for kind in TYPES:
            assert ours[kind][i] == pytest.approx(expected[kind].fmeasure, abs=1e-6), (
                kind, pred, ref)


def test_rouge_multiple_references_take_the_best_like_score_multi():
    preds = ["the cat is on the mat", "a bird sang in the tree"]
    refs = [["the cat sat on the mat", "there is a cat on the mat", "a dog"],
            ["the bird sang", "in the tree a bird sang loudly"]]
    scorer = rouge_scorer.RougeScorer(TYPES)
    ours = rouge(preds, refs, rouge_types=TYPES, use_aggregator=False)
    for i in range(2):
        expected = scorer.score_multi(refs[i], preds[i])
        for kind in TYPES:
            assert ours[kind][i] == pytest.approx(expected[kind].fmeasure, abs=1e-6)


def test_rouge_aggregate_is_the_plain_mean():
    """evaluate's default aggregate is a bootstrap median of this mean (random to ~1e-3)."""
    preds, refs = [p for p, _ in ROUGE_BATTERY], [r for _, r in ROUGE_BATTERY]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeLsum"])
    means = rouge(preds, refs, rouge_types=["rouge1", "rougeLsum"])
    for kind in means:
        expected = statistics.fmean(scorer.score(r, p)[kind].fmeasure
                                    for p, r in ROUGE_BATTERY)
        assert means[kind] == pytest.approx(expected, abs=1e-9)


def test_rouge_defaults_and_errors():
    assert set(rouge(["a b"], ["a b"])) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    with pytest.raises(ValueError, match="unknown ROUGE type"):
        rouge(["a"], ["a"], rouge_types=["rougeX"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        rouge("a", ["a"])
    with pytest.raises(ValueError, match="1 predictions but 2"):
        rouge(["a"], ["a", "b"])


# --------------------------------------------------------------------------- kappa and stats


def _table_to_labels(yy: int, yn: int, ny: int, nn: int) -> tuple[list[str], list[str]]:
    """Two raters' yes/no labels from a 2x2 table (rows: rater A, columns: rater B)."""
    a = ["y"] * (yy + yn) + ["n"] * (ny + nn)
    b = ["y"] * yy + ["n"] * yn + ["y"] * ny + ["n"] * nn
    return a, b


@pytest.mark.parametrize("table, kappa", [
    # The worked examples of Cohen's kappa on Wikipedia, done by hand:
    ((20, 5, 10, 15), 0.4),             # p_o = .70, p_e = .5*.6 + .5*.4 = .50
    ((45, 15, 25, 15), 0.06 / 0.46),    # p_o = .60, p_e = .6*.7 + .4*.3 = .54
    ((25, 35, 5, 35), 0.14 / 0.54),     # p_o = .60, p_e = .6*.3 + .4*.7 = .46
])
def test_cohen_kappa_textbook_examples(table, kappa):
    a, b = _table_to_labels(*table)
    assert cohen_kappa(a, b) == pytest.approx(kappa, abs=1e-12)
    assert cohen_kappa(b, a) == pytest.approx(kappa, abs=1e-12)


def test_cohen_kappa_three_categories_by_hand():
    a = [1, 1, 2, 2, 3, 3, 3, 1, 2, 3]
    b = [1, 2, 2, 2, 3, 3, 1, 1, 2, 2]
    # p_o = 7/10; marginals A (3, 3, 4), B (3, 5, 2): p_e = (9 + 15 + 8) / 100 = .32
    assert cohen_kappa(a, b) == pytest.approx((0.7 - 0.32) / (1 - 0.32))


def test_cohen_kappa_edges():
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == 1.0
    assert math.isnan(cohen_kappa([4, 4, 4], [4, 4, 4]))  # chance agreement is already 1
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="no items"):
        cohen_kappa([], [])
    with pytest.raises(TypeError):
        cohen_kappa("abc", "abc")


def test_weighted_kappa_by_hand():
    a, b = [1, 2, 3], [1, 3, 3]
    # observed disagreement 1/3 (the pair 2-3); shares a (1/3, 1/3, 1/3), b (1/3, 0, 2/3):
    # expected |i-j| = 1, expected (i-j)^2 = 5/3
    assert cohen_kappa(a, b, weights="linear") == pytest.approx(1 - (1 / 3) / 1)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(1 - (1 / 3) / (5 / 3))
    # on a 1-5 scale where 4 and 5 are unused the positions (and so the weights) are the same
    assert cohen_kappa(a, b, [1, 2, 3, 4, 5], "linear") == pytest.approx(2 / 3)
    # with 0/1 weights the weighted formula is the plain kappa
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa(a, b, [3, 2, 1]))


def test_weighted_kappa_scale_positions_labels_0_and_words():
    import numpy as np

    # a gap in the scale: 1 vs 3 is two steps on [1, 2, 3] but one step on the used labels
    a, b = [1, 3, 3, 1], [3, 3, 1, 1]
    assert cohen_kappa(a, b, [1, 2, 3], "quadratic") == pytest.approx(0.0)
    zero = cohen_kappa([0, 1, 2, 0], [0, 2, 2, 1], [0, 1, 2], "linear")
    assert zero == pytest.approx(cohen_kappa([1, 2, 3, 1], [1, 3, 3, 2], [1, 2, 3], "linear"))
    words = cohen_kappa(["bad", "ok", "good"], ["ok", "ok", "good"], ["bad", "ok", "good"],
                        "linear")
    assert words == pytest.approx(cohen_kappa([1, 2, 3], [2, 2, 3], [1, 2, 3], "linear"))
    assert cohen_kappa(np.array([1, 2, 3]), np.array([1, 3, 3]), weights="linear") == \
        pytest.approx(2 / 3)


def test_weighted_kappa_edges_and_errors():
    assert cohen_kappa([2, 5, 1], [2, 5, 1], weights="quadratic") == 1.0
    assert math.isnan(cohen_kappa([4] * 5, [4] * 5, [1, 2, 3, 4, 5], "linear"))
    assert cohen_kappa([4] * 5, [3] * 5, weights="quadratic") == 0.0
    assert cohen_kappa([1, 2, 1, 2], [2, 1, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa([1, 2, 3], [1, 2], weights="linear")
    with pytest.raises(ValueError, match="not in labels"):
        cohen_kappa([1, 6], [1, 2], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="weights must be"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")
    with pytest.raises(TypeError, match="needs the labels in order"):
        cohen_kappa(["a", 1], [1, "a"], weights="linear")


_Z = statistics.NormalDist().inv_cdf(0.975)


@pytest.mark.parametrize("p, df, expected, tol", [
    (0.975, 1, math.tan(math.pi * (0.975 - 0.5)), 1e-7),   # df = 1 is the Cauchy distribution
    (0.9, 1, math.tan(math.pi * 0.4), 1e-7),
    (0.975, 2, (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025), 1e-7),  # closed form, df = 2
    (0.995, 2, (2 * 0.995 - 1) / math.sqrt(2 * 0.995 * 0.005), 1e-7),
    (0.975, 4, 2.7764, 1e-4),                               # t tables (4 decimals)
    (0.975, 9, 2.2622, 1e-4),
    (0.975, 29, 2.0452, 1e-4),
    (0.95, 10, 1.8125, 1e-4),
    (0.025, 4, -2.7764, 1e-4),
    # large df: the normal quantile plus the first Cornish-Fisher term z (z^2 + 1) / (4 df)
    (0.975, 10**7, _Z + _Z * (_Z**2 + 1) / (4 * 10**7), 1e-9),
])
def test_t_quantile(p, df, expected, tol):
    assert t_quantile(p, df) == pytest.approx(expected, abs=tol)


def test_mean_ci_by_hand():
    values = [2, 4, 4, 5, 5]
    m, low, high, n = mean_ci(values)
    sd = statistics.stdev(values)
    half = 2.7764451052 * sd / math.sqrt(5)
    assert (m, n) == (4.0, 5)
    assert low == pytest.approx(4 - half, abs=1e-8) and high == pytest.approx(4 + half, abs=1e-8)
    single = mean_ci([3])
    assert single.mean == 3 and math.isnan(single.low) and math.isnan(single.high)
    with pytest.raises(ValueError, match="empty"):
        mean_ci([])
    with pytest.raises(TypeError):
        mean_ci([1, "2"])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1, 2], confidence=95)


def test_precision_recall_at_threshold_by_hand():
    scores = [0.9, 0.8, 0.6, 0.4, 0.3, 0.1]
    labels = [1, 0, 1, 1, 0, 0]
    out = precision_recall_at(scores, labels, threshold=0.5)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (2, 1, 1, 2)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    assert precision_recall_at(scores, labels, threshold=0.95)["precision"] == 0.0
    assert precision_recall_at(scores, labels, threshold=0.0)["recall"] == 1.0
    with pytest.raises(ValueError, match="6 scores but 2 labels"):
        precision_recall_at(scores, [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        precision_recall_at([0.5], [2])
