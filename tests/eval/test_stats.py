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
