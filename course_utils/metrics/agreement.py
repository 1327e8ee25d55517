"""Agreement between two raters beyond chance: Cohen's kappa, plain and weighted (lesson 07).

Two raters who both give "4" most of the time agree often by chance alone. Kappa compares the
observed agreement ``p_o`` with the agreement ``p_e`` expected if each rater picked labels at
random with their own label frequencies: ``kappa = (p_o - p_e) / (1 - p_e)``. 1 is perfect
agreement, 0 is chance level, below 0 is worse than chance.

Ordinal ratings (1 to 5) deserve partial credit: a 4 against a 5 is a smaller disagreement than
a 1 against a 5. The weighted kappa is ``1 - sum(w * observed) / sum(w * expected)`` over the
table of label pairs, with weights ``|i - j|`` (linear) or ``(i - j) ** 2`` (quadratic) on the
labels' positions ``i, j`` in the scale; with 0/1 weights it is the plain kappa. These are the
definitions of ``sklearn.metrics.cohen_kappa_score(a, b, labels=..., weights=...)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Literal

WEIGHTS = (None, "linear", "quadratic")


def _as_list(name: str, x) -> list:
    if isinstance(x, str) or not hasattr(x, "__len__") or not hasattr(x, "__iter__"):
        raise TypeError(f"{name} must be a list of labels, got {type(x).__name__}")
    return [v.item() if hasattr(v, "item") and callable(v.item) else v for v in x]


def _scale(a: list, b: list, labels: Sequence[Hashable] | None, weighted: bool) -> list:
    if labels is None:
        used = list(dict.fromkeys(a + b))
        if not weighted:
            return used
        try:
            return sorted(used)
        except TypeError:
            raise TypeError("weighted kappa needs the labels in order: pass labels=[...] (the "
                            "scale from lowest to highest)") from None
    scale = _as_list("labels", labels)
    if len(set(scale)) != len(scale):
        raise ValueError(f"labels has repeated entries: {scale!r}")
    unknown = sorted({repr(v) for v in a + b} - {repr(v) for v in scale})
    if unknown:
        raise ValueError(f"the raters used labels that are not in labels: {', '.join(unknown)}")
    return scale


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable],
                labels: Sequence[Hashable] | None = None,
                weights: Literal["linear", "quadratic"] | None = None) -> float:
    """Cohen's kappa of two raters' labels for the same items, in the same order.

    ``labels`` is the scale, lowest to highest (default: the labels either rater used, sorted);
    ``weights`` None gives the plain kappa, "linear" or "quadratic" the weighted kappa for
    ordinal scales. Returns ``nan`` when chance agreement is already perfect (both raters gave
    one and the same label to every item): kappa is 0/0 there, undefined, as in sklearn.
    """
    a, b = _as_list("a", a), _as_list("b", b)
    if len(a) != len(b):
        raise ValueError(f"the raters labelled different numbers of items ({len(a)} vs "
                         f"{len(b)}): kappa needs both labels for every item")
    if not a:
        raise ValueError("no items: kappa needs at least one item rated by both raters")
    if weights not in WEIGHTS:
        raise ValueError(f'weights must be None, "linear" or "quadratic", got {weights!r}')
    scale = _scale(a, b, labels, weights is not None)
    position = {label: i for i, label in enumerate(scale)}
    n = len(a)
    pairs = Counter((position[x], position[y]) for x, y in zip(a, b, strict=True))
    count_a = Counter(position[x] for x in a)
    count_b = Counter(position[y] for y in b)

    def weight(i: int, j: int) -> float:
        if weights is None:
            return float(i != j)
        return abs(i - j) if weights == "linear" else (i - j) ** 2

    observed = sum(weight(i, j) * c for (i, j), c in pairs.items()) / n
    expected = sum(weight(i, j) * ca * cb for i, ca in count_a.items()
                   for j, cb in count_b.items()) / (n * n)
    if math.isclose(expected, 0.0, abs_tol=1e-15):
        return math.nan
    return 1.0 - observed / expected
