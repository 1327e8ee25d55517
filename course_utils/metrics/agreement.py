"""Agreement between two raters beyond chance: Cohen's kappa (lesson 07, human evaluation).

Two raters who both give "4" most of the time agree often by chance alone. Kappa compares the
observed agreement ``p_o`` with the agreement ``p_e`` expected if each rater picked labels at
random with their own label frequencies: ``kappa = (p_o - p_e) / (1 - p_e)``. 1 is perfect
agreement, 0 is chance level, below 0 is worse than chance.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's (unweighted) kappa of two raters' labels for the same items, in the same order.

    Returns ``nan`` when chance agreement is already 1 (both raters used one and the same
    label for every item): kappa is undefined there.
    """
    for name, x in (("a", a), ("b", b)):
        if isinstance(x, str) or not isinstance(x, Sequence):
            raise TypeError(f"{name} must be a list of labels, got {type(x).__name__}")
    if len(a) != len(b):
        raise ValueError(f"the raters labelled different numbers of items ({len(a)} vs "
                         f"{len(b)}): kappa needs both labels for every item")
    if not a:
        raise ValueError("no items: kappa needs at least one item rated by both raters")
    n = len(a)
    p_observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    p_chance = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if math.isclose(p_chance, 1.0):
        return math.nan
    return (p_observed - p_chance) / (1.0 - p_chance)
