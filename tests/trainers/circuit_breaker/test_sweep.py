"""The dev sweep refuses the eval split and applies its selection rule as documented."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import DataValidationError
from trainers.circuit_breaker.config import CircuitBreakerConfig, MaskMode
from trainers.circuit_breaker.data import Split, WorldConfig, generate_world
from trainers.circuit_breaker.sweep import (
    Knob,
    dev_items,
    fmt_value,
    parse_knob,
    promote,
    render_markdown,
    run_sweep,
    select,
)

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
    return {"correct": correct, "asr": 0.0, "benign_success": benign, "incoherent": incoherent}


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
    assert parse_knob("adv_safe_ce_weight=3,8") == Knob("adv_safe_ce_weight", (3.0, 8.0))
    assert parse_knob("target_layers=1,2+3") == Knob("target_layers", ((1,), (2, 3)))
    assert parse_knob("steps=100,150").values == (100, 150)
    assert parse_knob("retain_layers=all,2+3,none").values == ("all", (2, 3), None)
    assert parse_knob("mask_mode=completion").values == (MaskMode.COMPLETION,)
    assert parse_knob("lora_r=4,16").values == (4, 16)
    with pytest.raises(DataValidationError, match="CircuitBreakerConfig field"):
        parse_knob("nope=1")
    with pytest.raises(DataValidationError, match=r"'steps=1\.5'.*does not parse as int"):
        parse_knob("steps=1.5")


def _fake_runner(
    correct: dict[tuple[str, int], float], calls: list[tuple[float, int]]
) -> tuple[Callable[[CircuitBreakerConfig], dict[str, float]], dict[str, Any]]:
    """Dev rows from a table of (learning rate, seed) → correct; records every call."""

    def run(cfg: CircuitBreakerConfig) -> dict[str, float]:
        calls.append((cfg.learning_rate, cfg.seed))
        return _row(correct[(fmt_value(cfg.learning_rate), cfg.seed)])

    info = {"n_dev": 3, "baseline": {"correct": 0.3, "asr": 0.3, "benign_success": 1.0}}
    return run, info


def test_halving_runs_all_candidates_on_seed0_and_the_best_k_on_the_rest(tmp_path: Path) -> None:
    correct = {
        ("0.005", 0): 0.6, ("0.01", 0): 0.8, ("0.02", 0): 0.9,
        ("0.01", 1): 0.75, ("0.01", 2): 0.7, ("0.02", 1): 0.5, ("0.02", 2): 0.95,
    }  # fmt: skip
    calls: list[tuple[float, int]] = []
    result = run_sweep(
        cache_dir=tmp_path,
        knobs=[parse_knob("learning_rate=5e-3,1e-2,2e-2")],
        seeds=[0, 1, 2],
        out=tmp_path / "sweep.json",
        promote_k=2,
        progress=lambda _: None,
        runner=_fake_runner(correct, calls),
    )
    assert sorted(calls) == sorted([(5e-3, 0), (1e-2, 0), (2e-2, 0), *[
        (lr, s) for lr in (1e-2, 2e-2) for s in (1, 2)]])  # fmt: skip
    stage = result["stages"][0]
    assert stage["promoted"] == ["0.02", "0.01"]
    # 0.02 has the best seed 0 but its worst seed (0.5) loses to 0.01's (0.7)
    assert stage["chosen"] == "0.01" and result["chosen_config"]["learning_rate"] == 0.01
    assert "stopped after seed 0" in render_markdown(result)


def test_a_restarted_sweep_reuses_the_stored_rows_of_the_same_code(tmp_path: Path) -> None:
    correct = {(lr, s): 0.5 for lr in ("0.01", "0.02") for s in (0, 1)}
    out = tmp_path / "sweep.json"
    first: list[tuple[float, int]] = []
    kwargs: dict[str, Any] = {
        "cache_dir": tmp_path, "knobs": [parse_knob("learning_rate=1e-2,2e-2")],
        "seeds": [0, 1], "out": out, "progress": lambda _: None,
    }  # fmt: skip
    run_sweep(**kwargs, runner=_fake_runner(correct, first))
    assert len(first) == 4 and len(json.loads(out.read_text())["runs"]) == 4
    again: list[tuple[float, int]] = []
    lines: list[str] = []
    run_sweep(**{**kwargs, "progress": lines.append}, runner=_fake_runner(correct, again))
    assert again == []  # nothing retrained
    assert sum("reused from sweep.json" in line for line in lines) == 4
    stale = json.loads(out.read_text())
    for row in stale["runs"].values():
        row["code"] = "other-code"
    out.write_text(json.dumps(stale))
    run_sweep(**kwargs, runner=_fake_runner(correct, again))
    assert len(again) == 4  # rows of other code are not trusted


def test_a_later_stage_starts_from_the_earlier_stages_choice(tmp_path: Path) -> None:
    seen: list[CircuitBreakerConfig] = []

    def run(cfg: CircuitBreakerConfig) -> dict[str, float]:
        seen.append(cfg)
        return _row(0.9 if cfg.adv_safe_ce_weight == 3.0 else 0.5)

    result = run_sweep(
        cache_dir=tmp_path,
        knobs=[parse_knob("adv_safe_ce_weight=3,8"), parse_knob("target_layers=1,2")],
        seeds=[0],
        out=tmp_path / "s.json",
        progress=lambda _: None,
        runner=(run, {"n_dev": 1, "baseline": {"correct": 0, "asr": 0, "benign_success": 1.0}}),
    )
    assert result["chosen"] == {"adv_safe_ce_weight": "3.0", "target_layers": "2"}
    assert {c.adv_safe_ce_weight for c in seen[2:]} == {3.0}
    assert tuple(result["chosen_config"]["target_layers"]) == (2,)


def test_promotion_skips_excluded_values_and_prefers_the_current_value_on_ties() -> None:
    table = {
        "a": {"0": _row(0.9, incoherent=1)},  # excluded: cannot be chosen, so not promoted
        "b": {"0": _row(0.7)},
        "c": {"0": _row(0.8)},
        "d": {"0": _row(0.8)},
    }
    assert promote(table, k=2, baseline_benign=1.0, default="d") == ["d", "c"]
    assert promote(table, k=2, baseline_benign=1.0, default="b") == ["c", "d"]


def test_with_no_more_candidates_than_k_every_candidate_runs_every_seed(tmp_path: Path) -> None:
    correct = {(lr, s): 0.5 for lr in ("0.01", "0.02") for s in (0, 1, 2)}
    correct[("0.01", 0)] = 0.1  # would lose a halving; with 2 ≤ K it still runs on all seeds
    calls: list[tuple[float, int]] = []
    result = run_sweep(
        cache_dir=tmp_path,
        knobs=[parse_knob("learning_rate=1e-2,2e-2")],
        seeds=[0, 1, 2],
        out=tmp_path / "s.json",
        promote_k=2,
        progress=lambda _: None,
        runner=_fake_runner(correct, calls),
    )
    assert len(calls) == 6 and result["stages"][0]["complete"]


def test_stored_only_trains_nothing_and_a_stage_missing_seeds_keeps_the_current_value(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s.json"
    correct = {("0.01", 0): 0.5, ("0.02", 0): 0.9}
    calls: list[tuple[float, int]] = []
    knob = parse_knob("learning_rate=1e-2,2e-2")
    run_sweep(
        cache_dir=tmp_path, knobs=[knob], seeds=[0], out=out, progress=lambda _: None,
        runner=_fake_runner(correct, calls),
    )  # fmt: skip
    assert len(calls) == 2  # the seed-0 screen
    lines: list[str] = []
    result = run_sweep(
        cache_dir=tmp_path, knobs=[knob], seeds=[0, 1, 2], out=out, stored_only=True,
        progress=lines.append, runner=_fake_runner(correct, calls),
    )  # fmt: skip
    stage = result["stages"][0]
    assert len(calls) == 2 and sum("not measured" in line for line in lines) == 4
    # 0.02 leads on seed 0 but never ran on seeds 1 and 2: nothing is re-derived
    assert not stage["complete"] and stage["chosen"] == "0.01"
    assert result["chosen_config"]["learning_rate"] == 0.01
    md = render_markdown(result)
    assert "**incomplete**" in md and "finalist, seeds missing" in md and "**chosen**" not in md


def test_a_stage_where_no_value_meets_the_constraints_keeps_the_current_value(
    tmp_path: Path,
) -> None:
    def run(cfg: CircuitBreakerConfig) -> dict[str, float]:
        return _row(0.9 if cfg.adv_safe_ce_weight == 3.0 else 0.7, benign=0.5)

    info = {"n_dev": 1, "baseline": {"correct": 0, "asr": 0, "benign_success": 1.0}}
    result = run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("adv_safe_ce_weight=3,8")], seeds=[0, 1],
        out=tmp_path / "s.json", progress=lambda _: None, runner=(run, info),
    )  # fmt: skip
    assert result["chosen"] == {"adv_safe_ce_weight": "8.0"}  # 3 is better, but costs benign
    assert "no value met the constraints" in render_markdown(result)


def test_rows_of_a_parallel_sweep_are_imported(tmp_path: Path) -> None:
    correct = {("0.01", 0): 0.5, ("0.02", 0): 0.9}
    calls: list[tuple[float, int]] = []
    run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("learning_rate=2e-2")], seeds=[0],
        out=tmp_path / "side.json", progress=lambda _: None, runner=_fake_runner(correct, calls),
    )  # fmt: skip
    result = run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("learning_rate=1e-2,2e-2")], seeds=[0],
        out=tmp_path / "main.json", imports=[tmp_path / "side.json"], stored_only=True,
        progress=lambda _: None, runner=_fake_runner(correct, calls),
    )  # fmt: skip
    assert calls == [(2e-2, 0)]  # trained once, by the side sweep
    assert result["stages"][0]["table"]["0.02"]["0"]["correct"] == 0.9
    assert result["stages"][0]["table"]["0.01"] == {}  # never measured: not invented


def test_a_value_excluded_on_the_first_seed_is_not_run_on_the_others_even_with_k_or_fewer(
    tmp_path: Path,
) -> None:
    calls: list[tuple[float, int]] = []

    def run(cfg: CircuitBreakerConfig) -> dict[str, float]:
        calls.append((cfg.learning_rate, cfg.seed))
        benign = 0.5 if cfg.learning_rate == 0.02 and cfg.seed == 0 else 1.0
        return _row(0.9 if cfg.learning_rate == 0.02 else 0.6, benign=benign)

    info = {"n_dev": 1, "baseline": {"correct": 0, "asr": 0, "benign_success": 1.0}}
    result = run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("learning_rate=1e-2,2e-2")], seeds=[0, 1, 2],
        out=tmp_path / "s.json", promote_k=2, progress=lambda _: None, runner=(run, info),
    )  # fmt: skip
    # 0.02 costs benign success on seed 0: the rule can never choose it, so seeds 1-2 skip it
    assert sorted(calls) == [(0.01, 0), (0.01, 1), (0.01, 2), (0.02, 0)]
    stage = result["stages"][0]
    assert stage["promoted"] == ["0.01"] and stage["complete"] and stage["chosen"] == "0.01"
    assert "stopped after seed 0" in render_markdown(result)


def test_a_retain_layers_stage_runs_configs_with_the_parsed_values(tmp_path: Path) -> None:
    seen: list[Any] = []

    def run(cfg: CircuitBreakerConfig) -> dict[str, float]:
        seen.append(cfg.retain_layers)
        return _row(0.8 if cfg.retain_layers == (2, 3) else 0.7)

    info = {"n_dev": 1, "baseline": {"correct": 0, "asr": 0, "benign_success": 1.0}}
    result = run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("retain_layers=all,2+3")], seeds=[0],
        out=tmp_path / "s.json", progress=lambda _: None, runner=(run, info),
    )  # fmt: skip
    assert seen == ["all", (2, 3)]
    assert result["chosen"] == {"retain_layers": "2+3"}
    assert tuple(result["chosen_config"]["retain_layers"]) == (2, 3)


def test_render_writes_the_named_block_of_a_doc_and_leaves_the_others(tmp_path: Path) -> None:
    from trainers.circuit_breaker.sweep import main

    calls: list[tuple[float, int]] = []
    out = tmp_path / "s.json"
    run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("learning_rate=1e-2,2e-2")], seeds=[0], out=out,
        progress=lambda _: None, runner=_fake_runner({("0.01", 0): 0.5, ("0.02", 0): 0.9}, calls),
    )  # fmt: skip
    doc = tmp_path / "doc.md"
    doc.write_text(
        "a\n<!-- cb-sweep:begin -->\nold one\n<!-- cb-sweep:end -->\n"
        "b\n<!-- cb-sweep-2:begin -->\nold two\n<!-- cb-sweep-2:end -->\n",
        encoding="utf-8",
    )
    main(["--render", str(out), "--write-docs", str(doc), "--block", "cb-sweep-2"])
    text = doc.read_text(encoding="utf-8")
    assert "old one" in text and "old two" not in text
    assert "**`learning_rate`**" in text.split("cb-sweep-2:begin")[1]
    with pytest.raises(DataValidationError, match="cb-sweep-3:begin"):
        main(["--render", str(out), "--write-docs", str(doc), "--block", "cb-sweep-3"])


def test_a_candidate_never_run_on_the_first_seed_leaves_the_stage_incomplete(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s.json"
    calls: list[tuple[float, int]] = []
    knob = parse_knob("learning_rate=1e-2,2e-2")
    run_sweep(
        cache_dir=tmp_path, knobs=[parse_knob("learning_rate=1e-2")], seeds=[0], out=out,
        progress=lambda _: None, runner=_fake_runner({("0.01", 0): 0.5}, calls),
    )  # fmt: skip
    result = run_sweep(
        cache_dir=tmp_path, knobs=[knob], seeds=[0], out=out, stored_only=True,
        progress=lambda _: None, runner=_fake_runner({}, calls),
    )  # fmt: skip
    stage = result["stages"][0]
    # 0.01 alone was measured; 0.02 might have beaten it, so nothing is re-derived
    assert not stage["complete"] and stage["chosen"] == "0.01"
    md = render_markdown(result)
    assert "**incomplete** — 0.02 not run" in md and "| 0.02 | — |" in md
