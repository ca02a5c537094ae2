import pytest
from scipy import stats

from harness.stats.estimate import Estimate
from harness.stats.inversion import p_value_by_inversion


def _z_interval(mean: float):  # type: ignore[no-untyped-def]
    def at(a: float) -> Estimate:
        z = stats.norm.isf(a / 2)
        return Estimate(value=mean, lo=mean - z, hi=mean + z, n=1, method="z", alpha=a)

    return at


def test_inversion_recovers_the_z_test() -> None:
    for mean in (0.5, 1.7, 3.0):
        p = p_value_by_inversion(_z_interval(mean), threshold=0.0, greater=True)
        assert p == pytest.approx(stats.norm.sf(mean), rel=1e-4)
    # wrong side: p ≈ 1 − p(opposite)
    p = p_value_by_inversion(_z_interval(-1.0), threshold=0.0, greater=True)
    assert p == pytest.approx(stats.norm.sf(-1.0), rel=1e-4)
    p = p_value_by_inversion(_z_interval(-1.0), threshold=0.0, greater=False)
    assert p == pytest.approx(stats.norm.cdf(-1.0), rel=1e-4)


def test_inversion_floor_and_undecidable() -> None:
    assert p_value_by_inversion(_z_interval(50.0), threshold=0.0, greater=True) == 5e-7

    def fixed(a: float) -> Estimate:
        return Estimate(value=0.0, lo=-1.0, hi=1.0, n=1, method="fixed", alpha=a)

    assert p_value_by_inversion(fixed, threshold=0.0, greater=True) == 0.5
