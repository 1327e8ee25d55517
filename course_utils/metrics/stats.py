"""Small statistics for evaluation reports: means with confidence intervals, precision/recall.

Human ratings come in handfuls, so the interval uses Student's t distribution rather than the
normal one (with 5 ratings the 95% multiplier is 2.78, not 1.96). The t quantile is computed
here from the regularised incomplete beta function so the course needs no SciPy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple


class MeanCI(NamedTuple):
    """A mean with the bounds of its confidence interval and the number of values."""

    mean: float
    low: float
    high: float
    n: int


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``t`` with ``t_cdf(t, df) == p`` (bisection; exact to about 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def _numbers(values: Sequence[float], name: str) -> list[float]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}[{i}] must be a number, got {v!r}")
        if math.isnan(v):
            raise ValueError(f"{name}[{i}] is NaN: drop missing values before summarising")
        out.append(float(v))
    return out


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean of ``values`` with a two-sided t confidence interval ``mean ± t * s / sqrt(n)``.

    One value gives an interval of ``nan`` (no spread to estimate); no values is an error.
    """
    xs = _numbers(values, "values")
    if not xs:
        raise ValueError("values is empty: a mean needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return MeanCI(mean, math.nan, math.nan, 1)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n)


def precision_recall_at(scores: Sequence[float], labels: Sequence[int | bool],
                        threshold: float = 0.5) -> dict:
    """Precision, recall and F1 when ``score >= threshold`` is predicted positive.

    ``labels`` are 1/True for the positive class (e.g. toxic). Returns the confusion counts
    too. A precision with no predicted positives is reported as 0.0 (scikit-learn's default).
    """
    xs = _numbers(scores, "scores")
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of 0/1, got {type(labels).__name__}")
    if len(xs) != len(labels):
        raise ValueError(f"there are {len(xs)} scores but {len(labels)} labels")
    if not xs:
        raise ValueError("scores is empty")
    if any(y not in (0, 1) for y in labels):
        raise ValueError("labels must be 0/1 (or False/True), 1 meaning the positive class")
    tp = sum(1 for s, y in zip(xs, labels, strict=True) if s >= threshold and y)
    fp = sum(1 for s, y in zip(xs, labels, strict=True) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(xs, labels, strict=True) if s < threshold and y)
    tn = len(xs) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "threshold": threshold}
