import math

import numpy as np
import pytest

from purls_pl.eval.stats import bootstrap_interval, mean_std, top1


def test_mean_std_and_top1():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
    assert mean_std([5.0]) == (5.0, 0.0)
    assert top1([1, 2, 3, 3], [1, 2, 0, 3]) == 0.75
    with pytest.raises(ValueError):
        top1([], [])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    small = [("a", rng.random(20) < 0.6), ("a", rng.random(20) < 0.6)]
    large = [("b", rng.random(2000) < 0.6), ("b", rng.random(2000) < 0.6)]
    low, high = bootstrap_interval(small)
    mean = np.mean([h.mean() for _, h in small])
    assert low <= mean <= high and bootstrap_interval(small) == (low, high), "deterministic"
    big_low, big_high = bootstrap_interval(large)
    assert big_high - big_low < (high - low) / 4
    assert bootstrap_interval([("c", np.ones(10, bool))]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="tested 10 and 11"):
        bootstrap_interval([("a", np.ones(10, bool)), ("a", np.ones(11, bool))])


def test_paired_difference_is_the_mean_difference_with_a_t_interval():
    from purls_pl.eval.stats import paired_difference

    mean, low, high = paired_difference([52.0, 64.0, 46.0], [50.0, 60.0, 40.0])  # differences 2, 4, 6
    half = 4.302652729911275 * 2.0 / 3**0.5  # t(0.975, 2) * sd / sqrt(n)
    assert mean == pytest.approx(4.0) and (low, high) == pytest.approx((4.0 - half, 4.0 + half))
    one = paired_difference([50.0], [40.0])
    assert one[0] == 10.0 and math.isnan(one[1]) and math.isnan(one[2])
    with pytest.raises(ValueError, match="equally many"):
        paired_difference([1.0], [1.0, 2.0])
