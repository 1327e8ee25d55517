"""BLEU, built up from clipped n-gram precision and the brevity penalty (lesson 07).

The definition is the one of ``evaluate``'s "bleu" (Papineni et al. 2002, as implemented in
tensorflow/nmt): corpus-level counts, the *shortest* reference as the reference length, and
optional add-one smoothing of every order (Lin and Och 2004). ``ref_length="closest"`` picks the
reference closest in length instead, which is what ``sacrebleu`` does; with that and
``smooth=False`` the numbers agree with ``sacrebleu.corpus_bleu(..., smooth_method="none")``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

from course_utils.metrics._checks import as_reference_lists, check_predictions

Tokens = Sequence[str]

# mteval-v13a, the tokenizer of WMT and sacrebleu's default: split off punctuation and symbols,
# keep "3.14" and "1,000" whole, split a dash that follows a digit.
_13A_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tokenize_13a(text: str) -> list[str]:
    """Split ``text`` into tokens the way mteval-v13a does (BLEU's standard tokenizer)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize_13a takes a str, got {type(text).__name__}")
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in text:
        text = (text.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    text = f" {text} "
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def ngrams(tokens: Tokens, n: int) -> Counter[tuple[str, ...]]:
    """Count the n-grams of a token list: ``ngrams(["a", "b", "a"], 1)`` is {a: 2, b: 1}."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_precision(prediction: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """BLEU's modified n-gram precision of one sentence, as ``(clipped matches, total n-grams)``.

    Each predicted n-gram counts as a match at most as often as it occurs in the single reference
    that has it most often, so "the the the the" cannot score 4/4 against "the cat". The counts
    (not the fraction) are returned because corpus BLEU adds them up over sentences first.
    """
    predicted = ngrams(prediction, n)
    max_ref: Counter[tuple[str, ...]] = Counter()
    for reference in references:
        max_ref |= ngrams(reference, n)  # | keeps the maximum count of each n-gram
    matches = sum(min(count, max_ref[gram]) for gram, count in predicted.items())
    return matches, max(len(prediction) - n + 1, 0)


def brevity_penalty(translation_length: int, reference_length: int) -> float:
    """BLEU's penalty for short output: 1 when ``c >= r``, else ``exp(1 - r / c)`` (0 when c = 0).

    Precision alone rewards saying little; the penalty takes that back. Longer output is not
    penalised here: its extra n-grams already lower the precisions.
    """
    if translation_length >= reference_length:
        return 1.0
    if translation_length == 0:
        return 0.0
    return math.exp(1.0 - reference_length / translation_length)


def _reference_length(hyp_len: int, ref_lens: list[int], mode: str) -> int:
    if mode == "shortest":
        return min(ref_lens)
    # closest in length; a tie goes to the shorter reference (sacrebleu's and mteval's rule)
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


def bleu(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
         max_order: int = 4, smooth: bool = False,
         tokenize: Callable[[str], list[str]] = tokenize_13a,
         ref_length: Literal["shortest", "closest"] = "shortest") -> dict:
    """Corpus BLEU of ``predictions`` against one or more references each.

    Returns ``evaluate``'s keys: ``bleu`` (0 to 1), ``precisions`` (one per order),
    ``brevity_penalty``, ``length_ratio``, ``translation_length`` and ``reference_length``.
    Matches and n-gram totals are summed over the whole corpus before dividing, so corpus BLEU
    is not the mean of sentence BLEU scores.
    """
    check_predictions(predictions)
    refs = as_reference_lists(references, len(predictions))
    if not isinstance(max_order, int) or isinstance(max_order, bool) or max_order < 1:
        raise ValueError(f"max_order must be a positive int, got {max_order!r}")
    if ref_length not in ("shortest", "closest"):
        raise ValueError(f'ref_length must be "shortest" or "closest", got {ref_length!r}')
    if not callable(tokenize):
        raise TypeError("tokenize must be a function from str to a list of tokens")

    hypotheses = [tokenize(p) for p in predictions]
    ref_tokens = [[tokenize(r) for r in sentence_refs] for sentence_refs in refs]
    return corpus_bleu_stats(hypotheses, ref_tokens, max_order, smooth, ref_length)


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                max_order: int = 4) -> float:
    """Corpus BLEU (0 to 1) of tokenised sentences, as ``sacrebleu.corpus_bleu(hyps, refs,
    tokenize="none", smooth_method="none").score / 100`` (exercise 07.2)."""
    return corpus_bleu_stats(hypotheses, references, max_order)["bleu"]


def corpus_bleu_stats(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                max_order: int = 4, smooth: bool = False,
                ref_length: Literal["shortest", "closest"] = "closest") -> dict:
    """Corpus BLEU of tokenised sentences, each against its list of tokenised references.

    Clipped matches, n-gram totals and both lengths are pooled over all sentences before the
    geometric mean and the brevity penalty (exercise 07.2). The default reference length is
    the closest one, as in ``sacrebleu.corpus_bleu(..., tokenize="none")``; ``bleu()`` passes
    "shortest" for the hub's BLEU. Returns the same keys as :func:`bleu`.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists: "
                         "give one list of references per hypothesis")
    matches = [0] * max_order
    possible = [0] * max_order
    translation_length = reference_length = 0
    for hyp, ref_tokens in zip(hypotheses, references, strict=True):
        if not ref_tokens:
            raise ValueError("a hypothesis has no reference: give at least one per sentence")
        translation_length += len(hyp)
        reference_length += _reference_length(len(hyp), [len(r) for r in ref_tokens], ref_length)
        for n in range(1, max_order + 1):
            m, total = clipped_precision(hyp, ref_tokens, n)
            matches[n - 1] += m
            possible[n - 1] += total
    if reference_length == 0:
        raise ValueError("every reference is empty after tokenization: BLEU needs reference "
                         "tokens to compare with")

    if smooth:
        precisions = [(m + 1.0) / (p + 1.0) for m, p in zip(matches, possible, strict=True)]
    else:
        precisions = [m / p if p > 0 else 0.0 for m, p in zip(matches, possible, strict=True)]
    if min(precisions) > 0:
        geo_mean = math.exp(sum(math.log(p) for p in precisions) / max_order)
    else:
        geo_mean = 0.0  # one order without a single match zeroes the geometric mean
    bp = brevity_penalty(translation_length, reference_length)
    return {
        "bleu": geo_mean * bp,
        "precisions": precisions,
        "brevity_penalty": bp,
        "length_ratio": translation_length / reference_length,
        "translation_length": translation_length,
        "reference_length": reference_length,
    }
