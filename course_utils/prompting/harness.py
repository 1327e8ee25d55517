"""The evaluation harness: run a prompt strategy over a data set and score it honestly.

A *strategy* is a pair: ``build_prompt(row) -> str`` and a predictor
``predict(prompts) -> (predictions, raw_outputs)``. :func:`evaluate` runs both over the rows and
reports accuracy with a Wilson confidence interval, because on 60-90 examples an accuracy is
a noisy estimate. Two strategies run on the same rows are compared *paired* (:func:`gain`:
McNemar's exact test and a paired bootstrap interval, :mod:`course_utils.metrics.paired`). The
predictors read an answer off the model: the most likely label (choosing by likelihood), the
label word in generated text,
the number after "The answer is", or the majority vote over sampled chains of thought
(self-consistency).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from course_utils.metrics.paired import McNemar, PairedInterval, mcnemar_exact, paired_bootstrap
from course_utils.prompting import runner

_END_OF_ANSWER = re.compile(r"\n\s*\n|\nQ:")
_ANSWER = re.compile(r"the answer is\s*:?\s*\$?\s*(-?\d{1,3}(?:,\d{3})+|-?\d+)", re.IGNORECASE)


# --------------------------------------------------------------------- reading the answers
def extract_answer(completion: str) -> int | None:
    """The integer after the first "The answer is" in the completion's own answer, or None.

    Robust to what small models do: the text is cut at the first blank line or new ``Q:``
    (the model often goes on to invent another question with its own answer); the phrase may
    have any capitalisation and a colon; the number may be negative or have thousands commas
    ("1,200"). No phrase, no answer: a number elsewhere in the steps is not the answer.
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    own = _END_OF_ANSWER.split(completion, maxsplit=1)[0]
    m = _ANSWER.search(own)
    return int(m.group(1).replace(",", "")) if m else None


def extract_label(completion: str, label_words: Sequence[str]) -> str | None:
    """The first label word that appears as a whole word in the completion's first line."""
    line = completion.strip().split("\n", 1)[0] if completion.strip() else ""
    hits = [(m.start(), w) for w in label_words
            for m in [re.search(rf"\b{re.escape(w)}\b", line, re.IGNORECASE)] if m]
    return min(hits)[1] if hits else None


def majority_vote(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most common answer, ignoring ``None`` (chains that gave no answer).

    A tie goes to the answer that appeared first; no answers at all gives ``None``.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    return counts.most_common(1)[0][0]  # equal counts keep first-seen order


# --------------------------------------------------------------------------------- accuracy
def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n``.

    Unlike ``p ± z·sqrt(p(1-p)/n)`` it never leaves [0, 1] and does not collapse to a point
    at 0 or n correct, which matters on the small samples a notebook can afford.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= n:
        raise ValueError(f"correct must be an int between 0 and n={n}, got {correct!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = correct / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact ends, no rounding noise
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


@dataclass
class Evaluation:
    """One strategy's result: accuracy, its 95% interval, and everything needed to look closer."""

    name: str
    accuracy: float
    low: float
    high: float
    correct: int
    n: int
    seconds: float
    prompts: list[str] = field(repr=False, default_factory=list)
    predictions: list = field(repr=False, default_factory=list)
    targets: list = field(repr=False, default_factory=list)
    outputs: list = field(repr=False, default_factory=list)

    def outcomes(self) -> list[bool]:
        """Per row: was the prediction right? (``None``, no answer, is wrong.)"""
        return [p is not None and p == t
                for p, t in zip(self.predictions, self.targets, strict=True)]

    def row(self) -> dict[str, Any]:
        """The summary as a dict (one table row)."""
        return {"strategy": self.name, "accuracy": round(self.accuracy, 3),
                "ci_low": round(self.low, 3), "ci_high": round(self.high, 3),
                "correct": self.correct, "n": self.n, "seconds": round(self.seconds, 1)}


def evaluate(name: str, rows: Sequence[Mapping], build_prompt: Callable[[Mapping], str],
             predict: Callable[[list[str]], tuple[list, list]],
             target: Callable[[Mapping], Any] | str = "label") -> Evaluation:
    """Run a strategy over ``rows`` and compare its predictions with each row's target."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: evaluate needs at least one example")
    get = (lambda r: r[target]) if isinstance(target, str) else target
    started = time.perf_counter()
    prompts = [build_prompt(r) for r in rows]
    predictions, outputs = predict(prompts)
    if len(predictions) != len(rows):
        raise ValueError(f"predict returned {len(predictions)} predictions for {len(rows)} rows")
    targets = [get(r) for r in rows]
    correct = sum(p is not None and p == t for p, t in zip(predictions, targets, strict=True))
    low, high = wilson_interval(correct, len(rows))
    return Evaluation(name, correct / len(rows), low, high, correct, len(rows),
                      time.perf_counter() - started, prompts, list(predictions), targets,
                      list(outputs))


def subset(ev: Evaluation, rows: Sequence[int], name: str) -> Evaluation:
    """``ev`` restricted to the given row indices (e.g. one technique's items), its accuracy
    and Wilson interval recomputed; its time is the share of the rows."""
    rows = list(rows)
    if not rows or any(isinstance(i, bool) or not 0 <= i < ev.n for i in rows):
        raise ValueError(f"rows must be a non-empty list of indices below {ev.n}, got {rows!r}")
    pick = lambda xs: [xs[i] for i in rows] if len(xs) == ev.n else []  # noqa: E731
    predictions, targets = pick(ev.predictions), pick(ev.targets)
    correct = sum(p is not None and p == t for p, t in zip(predictions, targets, strict=True))
    low, high = wilson_interval(correct, len(rows))
    return Evaluation(name, correct / len(rows), low, high, correct, len(rows),
                      ev.seconds * len(rows) / ev.n, pick(ev.prompts), predictions, targets,
                      pick(ev.outputs))


# ------------------------------------------------------------------------------- predictors
Predictor = Callable[[list[str]], tuple[list, list]]


def by_label_scores(model, tokenizer, label_words: Sequence[str], batch_size: int = 16,
                    normalise: bool = False) -> Predictor:
    """Choosing by likelihood: predict the label index whose word (" " + word, one token or
    several) the model finds most likely after the prompt (:func:`runner.label_logprobs`;
    ``normalise`` compares the mean log-probability per token instead of the sum)."""
    def predict(prompts: list[str]) -> tuple[list[int], list[list[float]]]:
        scores = runner.label_logprobs(model, tokenizer, prompts, label_words, normalise,
                                       batch_size)
        return scores.argmax(-1).tolist(), scores.exp().tolist()
    return predict


def by_generated_label(model, tokenizer, label_words: Sequence[str], max_new_tokens: int = 3,
                       batch_size: int = 16) -> Predictor:
    """Generate a few tokens greedily and read the first label word in them (None if none)."""
    def predict(prompts: list[str]) -> tuple[list[int | None], list[str]]:
        texts = runner.generate_batch(model, tokenizer, prompts, max_new_tokens,
                                      batch_size=batch_size, stop=("\n",))
        words = [extract_label(t, label_words) for t in texts]
        return [None if w is None else list(label_words).index(w) for w in words], texts
    return predict


def by_answer(model, tokenizer, direct: bool = False, max_new_tokens: int = 64,
              batch_size: int = 16) -> Predictor:
    """Greedy answer to a word problem. ``direct`` prompts end with "The answer is"."""
    def predict(prompts: list[str]) -> tuple[list[int | None], list[str]]:
        texts = runner.generate_batch(model, tokenizer, prompts, max_new_tokens,
                                      batch_size=batch_size, stop=("\n\n", "\nQ:"))
        return [extract_answer(("The answer is" + t) if direct else t) for t in texts], texts
    return predict


def by_self_consistency(model, tokenizer, n_samples: int = 5, temperature: float = 0.7,
                        top_k: int | None = None, max_new_tokens: int = 64,
                        batch_size: int = 8, seed: int = 0) -> Predictor:
    """Sample ``n_samples`` chains of thought per problem and take the majority answer.

    ``batch_size`` counts problems: each batch runs ``batch_size * n_samples`` sequences.
    """
    if n_samples < 2:
        raise ValueError(f"self-consistency needs n_samples >= 2, got {n_samples}")

    def predict(prompts: list[str]) -> tuple[list[int | None], list[list[str]]]:
        chains = runner.generate_batch(
            model, tokenizer, prompts, max_new_tokens, batch_size=batch_size,
            do_sample=True, temperature=temperature, top_k=top_k,
            num_return_sequences=n_samples, stop=("\n\n", "\nQ:"), seed=seed)
        return [majority_vote([extract_answer(c) for c in cs]) for cs in chains], chains
    return predict


def difference(a: Evaluation, b: Evaluation, confidence: float = 0.95
               ) -> tuple[float, float, float]:
    """``a.accuracy - b.accuracy`` with Newcombe's interval built from the two Wilson intervals.

    (Newcombe 1998, method 10.) It treats the two samples as independent, which is cautious
    when both strategies ran on the same examples.
    """
    la, ha = wilson_interval(a.correct, a.n, confidence)
    lb, hb = wilson_interval(b.correct, b.n, confidence)
    d = a.accuracy - b.accuracy
    return (d, d - math.sqrt((a.accuracy - la) ** 2 + (hb - b.accuracy) ** 2),
            d + math.sqrt((ha - a.accuracy) ** 2 + (b.accuracy - lb) ** 2))


def same_items(a: Evaluation, b: Evaluation) -> bool:
    """Did both evaluations answer the same rows (same number, same targets in order), and do
    both keep their per-row predictions (a paired test needs them)?"""
    return (a.n == b.n == len(a.targets) == len(a.predictions) == len(b.predictions)
            and a.targets == b.targets)


def paired(a: Evaluation, b: Evaluation, seed: int = 0) -> tuple[PairedInterval, McNemar]:
    """The paired comparison of two evaluations of the same rows: the bootstrap interval of
    ``a.accuracy - b.accuracy`` and McNemar's exact test on the rows where they disagree."""
    if not same_items(a, b):
        raise ValueError(f"{a.name!r} and {b.name!r} did not answer the same rows ({a.n} and "
                         f"{b.n} rows, or different targets): compare them with difference()")
    return (paired_bootstrap(a.outcomes(), b.outcomes(), seed=seed),
            mcnemar_exact(a.outcomes(), b.outcomes()))


def gain(a: Evaluation, b: Evaluation) -> str:
    """One sentence: how far ``a`` is above ``b``, its interval, and whether it is clear.

    On the same rows the comparison is paired (a bootstrap interval over the rows, McNemar's
    exact test on the rows only one of them got right: "clear" means p < 0.05); otherwise the
    two are independent samples (Newcombe's interval: "clear" when it excludes 0).
    """
    if same_items(a, b):
        (d, low, high), test = paired(a, b)
        clear = test.p_value < 0.05
        detail = (f"paired bootstrap 95% interval {100 * low:+.0f} to {100 * high:+.0f}; "
                  f"right only with the first on {test.a_only}, only with the second on "
                  f"{test.b_only}, McNemar exact p = {test.p_value:.3f}")
    else:
        d, low, high = difference(a, b)
        clear = low > 0 or high < 0
        detail = (f"independent samples, 95% interval {100 * low:+.0f} to "
                  f"{100 * high:+.0f}")
    verdict = ("a clear gain" if clear and d > 0 else "a clear loss" if clear and d < 0
               else "not distinguishable from no difference at this sample size")
    return f"{a.name} vs {b.name}: {100 * d:+.0f} points ({detail}), {verdict}"


# ---------------------------------------------------------------------------------- reports
def format_table(evaluations: Sequence[Evaluation]) -> str:
    """A plain-text table: strategy, accuracy, 95% interval, correct/n, seconds."""
    width = max([len(e.name) for e in evaluations] + [8])
    lines = [f"{'strategy':<{width}}  accuracy  95% interval   correct    time",
             "-" * (width + 46)]
    for e in evaluations:
        lines.append(f"{e.name:<{width}}  {e.accuracy:8.1%}  {e.low:5.1%} - {e.high:5.1%}"
                     f"  {e.correct:3d}/{e.n:<3d}  {e.seconds:5.1f} s")
    return "\n".join(lines)


def plot_evaluations(evaluations: Sequence[Evaluation], ax=None, title: str = "",
                     chance: float | None = None):
    """Bars of accuracy with their 95% Wilson intervals as error bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * len(evaluations) + 2, 3.4))
    xs = range(len(evaluations))
    acc = [e.accuracy for e in evaluations]
    err = [[e.accuracy - e.low for e in evaluations], [e.high - e.accuracy for e in evaluations]]
    ax.bar(xs, acc, yerr=err, capsize=4, color=[f"C{i}" for i in xs])
    for x, e in zip(xs, evaluations, strict=True):
        ax.text(x, e.high + 0.02, f"{e.accuracy:.0%}", ha="center", va="bottom")
    if chance is not None:
        ax.axhline(chance, ls="--", color="grey", lw=1)
        ax.text(len(evaluations) - 0.5, chance, "chance", va="bottom", ha="right",
                color="grey")
    ax.set_xticks(list(xs), [e.name for e in evaluations], rotation=20, ha="right")
    ax.set_ylim(0, 1.12)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("accuracy (95% interval)")
    ax.set_title(title)
    return ax
