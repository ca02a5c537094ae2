import pytest

from harness.errors import StatsError
from harness.stats.multiplicity import adjust


def test_holm_and_bh_known_values() -> None:
    ps = [0.01, 0.04, 0.03, 0.2]
    assert adjust(ps, method="holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust(ps, method="bh") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2])
    assert adjust(ps, method="none") == ps
    assert adjust([], method="holm") == []


def test_bad_inputs() -> None:
    with pytest.raises(StatsError, match=r"p-value #2"):
        adjust([0.1, 1.2], method="holm")
    with pytest.raises(StatsError, match=r"holm, bh, none"):
        adjust([0.1], method="bonferonni")
    with pytest.raises(StatsError):
        adjust([], method="sidak")
