"""course_utils.metrics.paired: McNemar's exact test against a brute-force enumeration of fair
coin flips and textbook values, and the paired bootstrap against the normal approximation."""

from __future__ import annotations

import itertools
import math

import pytest

from course_utils.metrics.paired import binomial_two_sided, mcnemar_exact, paired_bootstrap


def _enumerated_two_sided(k: int, n: int) -> float:
    """Every one of the 2**n equally likely coin sequences; the p-value is the share whose
    count of heads is at least as far from n/2 as k is."""
    far = abs(k - n / 2)
    hits = sum(1 for flips in itertools.product((0, 1), repeat=n)
               if abs(sum(flips) - n / 2) >= far - 1e-12)
    return hits / 2 ** n


@pytest.mark.parametrize("n", range(0, 13))
def test_the_exact_p_value_is_the_enumerated_one(n):
    for k in range(n + 1):
        assert binomial_two_sided(k, n) == pytest.approx(_enumerated_two_sided(k, n), abs=1e-12)


def test_textbook_values():
    # 0 of 5 discordant pairs one way: 2 * (1/2)**5; 2 of 10: 2 * (1 + 10 + 45) / 1024
    assert binomial_two_sided(0, 5) == pytest.approx(0.0625)
    assert binomial_two_sided(2, 10) == pytest.approx(0.109375)
    assert binomial_two_sided(5, 10) == 1.0 and binomial_two_sided(0, 0) == 1.0
    # 30 vs 10 discordant (n = 40): the tail P(X <= 10) doubled, summed here with fractions
    tail = sum(math.factorial(40) // (math.factorial(i) * math.factorial(40 - i))
               for i in range(11))
    assert binomial_two_sided(10, 40) == pytest.approx(2 * tail / 2 ** 40, rel=1e-12)
    assert binomial_two_sided(10, 40) == pytest.approx(0.00222, abs=1e-5)


def test_mcnemar_counts_only_the_discordant_items():
    a = [True, True, False, False, True, True, True, 1, 0]
    b = [True, False, False, True, False, False, False, 1, 0]
    test = mcnemar_exact(a, b)
    assert (test.a_only, test.b_only) == (4, 1)
    assert test.p_value == pytest.approx(_enumerated_two_sided(1, 5))
    assert mcnemar_exact(a, a).p_value == 1.0


def test_bad_outcomes_get_a_clear_error():
    with pytest.raises(ValueError, match="same items: a has 2 outcomes, b has 3"):
        mcnemar_exact([True, False], [True, False, True])
    with pytest.raises(ValueError, match="True/False"):
        mcnemar_exact([True, None], [True, False])
    with pytest.raises(ValueError, match="True/False"):
        paired_bootstrap([2, 0], [1, 0])
    with pytest.raises(TypeError, match="list of per-item outcomes"):
        mcnemar_exact("TF", "TF")
    with pytest.raises(ValueError, match="no items"):
        mcnemar_exact([], [])


def test_the_paired_bootstrap_is_seeded_and_near_the_normal_interval():
    n, a_only, b_only = 400, 70, 30
    a = [True] * a_only + [False] * b_only + [True] * 150 + [False] * 150
    b = [False] * a_only + [True] * b_only + [True] * 150 + [False] * 150
    d, low, high = paired_bootstrap(a, b, n_resamples=4000, seed=1)
    assert d == pytest.approx((a_only - b_only) / n)
    # per-item differences are +1, -1 or 0: their standard error gives the normal interval
    var = (a_only + b_only) / n - d ** 2
    half = 1.96 * math.sqrt(var / n)
    assert low == pytest.approx(d - half, abs=0.01) and high == pytest.approx(d + half, abs=0.01)
    assert paired_bootstrap(a, b, n_resamples=4000, seed=1) == (d, low, high)
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
