"""ROUGE-N, ROUGE-L and ROUGE-Lsum F-measures, written out (lesson 07).

The definitions are those of Google's ``rouge-score`` package, which ``evaluate``'s "rouge"
wraps: lowercase, keep only ``[a-z0-9]`` runs as tokens (so accented and non-Latin letters
vanish, a known pitfall), optionally Porter-stem tokens longer than three characters. With
several references per prediction the best-scoring reference counts. ``evaluate`` reports a
bootstrap median of the mean (``mid``); this module reports the plain mean, which that median
estimates.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

from course_utils.metrics._checks import as_reference_lists, check_predictions
from course_utils.metrics.bleu_metric import ngrams

Tokens = Sequence[str]
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem import porter  # the stemmer ROUGE-1.5.5 and rouge-score use

    return porter.PorterStemmer()


@lru_cache(maxsize=2**16)
def _stem(token: str) -> str:
    return _stemmer().stem(token)


def rouge_tokenize(text: str, use_stemmer: bool = False) -> list[str]:
    """ROUGE's tokens: lowercase alphanumeric runs, stemmed when longer than 3 characters."""
    if not isinstance(text, str):
        raise TypeError(f"rouge_tokenize takes a str, got {type(text).__name__}")
    tokens = _NON_ALNUM.sub(" ", text.lower()).split()
    if use_stemmer:
        tokens = [_stem(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if t.isascii() and t.isalnum()]


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (0 when both are 0)."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def rouge_n(prediction: Tokens, reference: Tokens, n: int) -> float:
    """ROUGE-N F-measure: n-gram overlap, clipped by counts, as precision and recall."""
    pred, ref = ngrams(prediction, n), ngrams(reference, n)
    overlap = sum((pred & ref).values())
    precision = overlap / max(sum(pred.values()), 1)
    recall = overlap / max(sum(ref.values()), 1)
    return f_measure(precision, recall)


def _lcs_table(a: Tokens, b: Tokens) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table


def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence: in order, but not necessarily adjacent."""
    return _lcs_table(a, b)[-1][-1]


def rouge_l_scores(prediction: Tokens, reference: Tokens) -> tuple[float, float, float]:
    """ROUGE-L ``(precision, recall, F)``: the LCS over the prediction's length (P) and the
    reference's (R), F their harmonic mean (rouge-score's F1, beta = 1), all 0 when either side
    is empty (exercise 07.4)."""
    if not prediction or not reference:
        return 0.0, 0.0, 0.0
    lcs = lcs_length(reference, prediction)
    precision, recall = lcs / len(prediction), lcs / len(reference)
    return precision, recall, f_measure(precision, recall)


def rouge_l(prediction: Tokens, reference: Tokens) -> float:
    """ROUGE-L F-measure: LCS length over prediction length (P) and reference length (R)."""
    return rouge_l_scores(prediction, reference)[2]


def _lcs_positions(ref: Tokens, cand: Tokens) -> list[int]:
    """Positions in ``ref`` of one longest common subsequence (rouge-score's tie-breaking)."""
    table = _lcs_table(ref, cand)
    i, j, positions = len(ref), len(cand), []
    while i > 0 and j > 0:
        if ref[i - 1] == cand[j - 1]:
            positions.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return positions[::-1]


def rouge_lsum(prediction_sents: Sequence[Tokens], reference_sents: Sequence[Tokens]) -> float:
    """Summary-level ROUGE-L (Lin 2004, section 3.2): union LCS of each reference sentence.

    Each reference sentence is matched against every predicted sentence; the union of the LCS
    hits counts, and a token is never credited more often than it occurs on either side.
    """
    m = sum(map(len, reference_sents))
    n = sum(map(len, prediction_sents))
    if not m or not n:
        return 0.0
    left_ref = Counter(t for s in reference_sents for t in s)
    left_pred = Counter(t for s in prediction_sents for t in s)
    hits = 0
    for ref in reference_sents:
        union = sorted(set().union(*(_lcs_positions(ref, c) for c in prediction_sents)))
        for token in (ref[i] for i in union):
            if left_pred[token] > 0 and left_ref[token] > 0:
                hits += 1
                left_pred[token] -= 1
                left_ref[token] -= 1
    return f_measure(hits / n, hits / m)


def rouge_scores(prediction: str, reference: str,
                 rouge_types: Sequence[str] = ROUGE_TYPES,
                 tokenizer: Callable[[str], list[str]] | None = None,
                 use_stemmer: bool = False) -> dict[str, float]:
    """The F-measure of each ROUGE type for one prediction and one reference."""
    tok = tokenizer or (lambda text: rouge_tokenize(text, use_stemmer))
    pred, ref = tok(prediction), tok(reference)
    out = {}
    for kind in rouge_types:
        if kind == "rougeL":
            out[kind] = rouge_l(pred, ref)
        elif kind == "rougeLsum":  # sentences are the lines of the text
            out[kind] = rouge_lsum([tok(s) for s in prediction.split("\n") if s],
                                   [tok(s) for s in reference.split("\n") if s])
        else:
            out[kind] = rouge_n(pred, ref, int(kind[5:]))
    return out


def rouge(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
          rouge_types: Sequence[str] = ROUGE_TYPES, use_stemmer: bool = False,
          use_aggregator: bool = True,
          tokenizer: Callable[[str], list[str]] | None = None) -> dict:
    """ROUGE F-measures of ``predictions`` against one or more references each.

    Returns ``{rouge_type: mean F-measure}``, or with ``use_aggregator=False`` a list of
    per-prediction scores for each type. ``rougeLsum`` treats each line as a sentence: put a
    newline between sentences (a summary on one line scores the same as ``rougeL``).
    """
    check_predictions(predictions)
    refs = as_reference_lists(references, len(predictions))
    if isinstance(rouge_types, str):
        rouge_types = [rouge_types]
    for kind in rouge_types:
        if not (kind in ("rougeL", "rougeLsum") or re.fullmatch(r"rouge[1-9]", str(kind))):
            raise ValueError(f"unknown ROUGE type {kind!r}: use rouge1 ... rouge9, rougeL or "
                             "rougeLsum")
    if tokenizer is not None and not callable(tokenizer):
        tokenizer = getattr(tokenizer, "tokenize", None)  # rouge-score style tokenizer objects
        if not callable(tokenizer):
            raise TypeError("tokenizer must be a function from str to a list of tokens")
    per_item: dict[str, list[float]] = {kind: [] for kind in rouge_types}
    for prediction, sentence_refs in zip(predictions, refs, strict=True):
        scores = [rouge_scores(prediction, r, rouge_types, tokenizer, use_stemmer)
                  for r in sentence_refs]
        for kind in rouge_types:  # the best reference for each type, as rouge-score does
            per_item[kind].append(max(s[kind] for s in scores))
    if not use_aggregator:
        return per_item
    return {kind: sum(v) / len(v) for kind, v in per_item.items()}
