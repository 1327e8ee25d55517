"""Comparing two systems that answered the same items: McNemar's exact test and a paired
bootstrap interval on the difference in accuracy.

When both strategies (or both models) answer the *same* items, the items they both get right
or both get wrong say nothing about which is better; only the discordant items do: ``b`` where
the first is right and the second wrong, ``c`` the reverse. Under "no difference" each
discordant item is a fair coin, so McNemar's exact test is a two-sided binomial test of ``b``
out of ``b + c`` with p = 1/2. Treating the two accuracies as independent samples (Newcombe's
interval) ignores this pairing and is needlessly cautious.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class McNemar(NamedTuple):
    """Discordant counts and the exact two-sided p-value."""

    a_only: int  # items the first system got right and the second wrong
    b_only: int  # the reverse
    p_value: float


class PairedInterval(NamedTuple):
    """``accuracy(a) - accuracy(b)`` with a percentile bootstrap interval over the items."""

    difference: float
    low: float
    high: float


def _outcomes(a: Sequence, b: Sequence) -> tuple[list[bool], list[bool]]:
    for name, xs in (("a", a), ("b", b)):
        if isinstance(xs, str) or not isinstance(xs, Sequence):
            raise TypeError(f"{name} must be a list of per-item outcomes (True = correct), "
                            f"got {type(xs).__name__}")
        bad = [x for x in xs if x not in (0, 1) or x is None]
        if bad:
            raise ValueError(f"{name} must hold True/False (or 1/0) per item, got {bad[0]!r}")
    if len(a) != len(b):
        raise ValueError(f"a paired comparison needs the same items: a has {len(a)} outcomes, "
                         f"b has {len(b)}")
    if not a:
        raise ValueError("no items to compare")
    return [bool(x) for x in a], [bool(x) for x in b]


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair-coin trials:
    ``min(1, 2 * P(X <= min(k, n - k)))``, the textbook form used for McNemar's exact test."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """McNemar's exact test on paired per-item outcomes ``a[i]``, ``b[i]`` (True = correct)."""
    a, b = _outcomes(a, b)
    a_only = sum(x and not y for x, y in zip(a, b, strict=True))
    b_only = sum(y and not x for x, y in zip(a, b, strict=True))
    return McNemar(a_only, b_only, binomial_two_sided(a_only, a_only + b_only))


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], n_resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> PairedInterval:
    """Resample the items (both systems' outcomes together) with replacement and take the
    percentile interval of the accuracy difference. Seeded: the same call gives the same
    interval."""
    a, b = _outcomes(a, b)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an int >= 100, got {n_resamples!r}")
    diffs = np.array(a, dtype=np.int64) - np.array(b, dtype=np.int64)  # -1, 0 or +1 per item
    rows = np.random.default_rng(seed).integers(0, len(diffs), size=(n_resamples, len(diffs)))
    stats = np.sort(diffs[rows].mean(axis=1))
    tail = (1 - confidence) / 2
    low = stats[math.floor(tail * (n_resamples - 1))]
    high = stats[math.ceil((1 - tail) * (n_resamples - 1))]
    return PairedInterval(float(diffs.mean()), float(low), float(high))
