"""The dev sweep refuses the eval split and applies its selection rule as documented."""

from __future__ import annotations

import pytest

from harness.errors import DataValidationError
from trainers.circuit_breaker.data import Split, WorldConfig, generate_world
from trainers.circuit_breaker.sweep import _parse_knob, dev_items, select

WORLD = generate_world(
    WorldConfig(
        n_baseline_sft_attacks=2,
        n_baseline_sft_benign=2,
        n_train_attacks=2,
        n_train_adversarial_safe=2,
        n_train_benign=2,
        n_dev_attacks=4,
        n_dev_benign=2,
        n_eval_attacks=4,
        n_eval_benign=2,
    )
)


def test_dev_items_refuses_the_eval_split() -> None:
    assert len(dev_items(WORLD[Split.DEV])) == 6
    with pytest.raises(DataValidationError, match=r"split\(s\) \['eval'\]"):
        dev_items([*WORLD[Split.DEV], WORLD[Split.EVAL][0]])


def _row(correct: float, *, benign: float = 1.0, incoherent: float = 0.0) -> dict[str, float]:
    return {"correct": correct, "benign_success": benign, "incoherent": incoherent}


def test_select_maximises_the_worst_seed_under_the_constraints() -> None:
    table = {
        "3.0": {"0": _row(0.9), "1": _row(0.5)},  # best mean seed, bad worst seed
        "8.0": {"0": _row(0.8), "1": _row(0.7)},
        "12.0": {"0": _row(0.95), "1": _row(0.9, incoherent=1)},  # incoherent: excluded
        "20.0": {"0": _row(0.95), "1": _row(0.95, benign=0.5)},  # costs benign: excluded
    }
    assert select(table, baseline_benign=1.0, default="3.0") == "8.0"
    tie = {"3.0": {"0": _row(0.8)}, "8.0": {"0": _row(0.8)}}
    assert select(tie, baseline_benign=1.0, default="8.0") == "8.0"


def test_parse_knob_names_the_field_and_casts_values() -> None:
    assert _parse_knob("adv_safe_ce_weight=3,8") == ("adv_safe_ce_weight", [3.0, 8.0])
    with pytest.raises(DataValidationError, match="CircuitBreakerConfig field"):
        _parse_knob("nope=1")
