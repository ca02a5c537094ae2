from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import TrainerError
from trainers.sft import SFTAdapter, SFTConfigSpec, SFTExample
from trainers.tiny import TinyModelConfig, build_tiny_model

TINY = TinyModelConfig(
    vocab_size=300,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    corpus_snippets=10,
)


def test_sft_changes_weights_only_through_masked_tokens_and_caches(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    base = build_tiny_model(TINY, out_dir=tmp_path / "m")
    examples = (
        SFTExample([1, 10, 11, 12, 13, 14], [0, 0, 0, 1, 1, 1]),
        SFTExample([1, 20, 21, 22], [0, 0, 1, 1]),
    )
    adapter = SFTAdapter(out_root=tmp_path / "out", progress=lambda _m: None)
    spec = SFTConfigSpec(base_model_dir=str(base), examples=examples, steps=3, batch_size=2)
    art = adapter.train(spec)
    assert not art.cached and len(art.metrics["loss_curve"]) >= 1
    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    after = AutoModelForCausalLM.from_pretrained(art.path / "model").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    again = adapter.train(spec)
    assert again.cached and again.digest == art.digest


def test_sft_without_examples_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="no training examples"):
        SFTAdapter(out_root=tmp_path).train(
            SFTConfigSpec(base_model_dir=str(tmp_path), examples=())
        )


def _require_wandb() -> None:
    import importlib.util
    import os

    if importlib.util.find_spec("wandb") is None:
        if os.environ.get("HARNESS_REQUIRE_WANDB") == "1":
            pytest.fail("wandb is not installed but HARNESS_REQUIRE_WANDB=1 (CI installs it)")
        pytest.skip("wandb not installed (pip install 'gate-harness[wandb]')")


def test_sft_run_is_logged_offline_and_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One tiny training with wandb installed: the offline run holds loss, lr and grad norm."""
    import os

    from trainers.tracking import read_offline_run

    _require_wandb()
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    base = build_tiny_model(TINY, out_dir=tmp_path / "m")
    examples = (SFTExample([1, 10, 11, 12], [0, 0, 1, 1]),)
    spec = SFTConfigSpec(base_model_dir=str(base), examples=examples, steps=4, batch_size=1)
    env_before = {
        k: v for k, v in os.environ.items() if k.startswith("WANDB_") and k != "WANDB_SERVICE"
    }
    art = SFTAdapter(out_root=tmp_path / "out", progress=lambda _m: None).train(spec)
    rec = art.metrics["wandb"]
    assert rec["mode"] == "offline" and rec["run_dir"].startswith(str(tmp_path / "wandb"))
    run = read_offline_run(rec["run_dir"])
    assert [row["_step"] for row in run.history] == [0, 1, 2, 3]
    assert all({"loss", "lr", "grad_norm"} <= set(row) for row in run.history)
    assert run.history[-1]["loss"] == pytest.approx(art.metrics["final_loss"])
    assert run.summary["final_loss"] == pytest.approx(art.metrics["final_loss"])
    assert run.config["tag"] == "sft" and run.exit_code == 0
    # our code set no W&B variable (wandb's own service socket aside)
    after = {k: v for k, v in os.environ.items() if k.startswith("WANDB_") and k != "WANDB_SERVICE"}
    assert after == env_before
    assert art.metrics["cache"]["code"]["trainers.sft"]
    from harness.cachekey import training_runs_used

    assert training_runs_used()["sft/sft"]["run_dir"] == rec["run_dir"]  # evidence carries it


def test_sft_logging_off_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    base = build_tiny_model(TINY, out_dir=tmp_path / "m")
    spec = SFTConfigSpec(
        base_model_dir=str(base), examples=(SFTExample([1, 10, 11], [0, 1, 1]),), steps=1
    )
    art = SFTAdapter(out_root=tmp_path / "out", progress=lambda _m: None).train(spec)
    assert art.metrics["wandb"]["mode"] == "inactive"
    assert "disabled by the user" in art.metrics["wandb"]["reason"]
    assert not (tmp_path / "wandb").exists()


def test_sft_key_follows_the_trainer_source_and_refresh_retrains(tmp_path: Path) -> None:
    base = build_tiny_model(TINY, out_dir=tmp_path / "m")
    spec = SFTConfigSpec(
        base_model_dir=str(base), examples=(SFTExample([1, 10, 11], [0, 1, 1]),), steps=1
    )
    key = spec.cache_key("sha256:base")
    assert set(key.code) == {"trainers.sft"} and "torch" in key.libraries and key.seed == 0
    assert spec.cache_key("sha256:other").key != key.key
    adapter = SFTAdapter(
        out_root=tmp_path / "out", progress=lambda _m: None, refresh=True, wandb_mode="disabled"
    )
    assert not adapter.train(spec).cached
    assert not adapter.train(spec).cached  # refresh: never reuse


def test_caller_tracker_stays_open_for_gate_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainers.tracking import RunTracker, read_offline_run

    _require_wandb()
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    base = build_tiny_model(TINY, out_dir=tmp_path / "m")
    spec = SFTConfigSpec(
        base_model_dir=str(base), examples=(SFTExample([1, 10, 11], [0, 1, 1]),), steps=2
    )
    with RunTracker(name="sft-with-gates", mode="offline") as run:
        SFTAdapter(out_root=tmp_path / "out", progress=lambda _m: None).train(spec, tracker=run)
        assert run.active  # the adapter did not close the caller's run
        run.summary({"gate/asr_reduction": 0.5})
    back = read_offline_run(run.run_dir)
    assert len(back.history) == 2 and back.summary["gate/asr_reduction"] == 0.5


def test_read_offline_run_rejects_non_runs_and_stops_at_a_torn_tail(tmp_path: Path) -> None:
    from harness.errors import TrainerError
    from trainers.tracking import _records, read_offline_run

    with pytest.raises(TrainerError, match="no run-"):
        read_offline_run(tmp_path)
    bad = tmp_path / "run-x.wandb"
    bad.write_bytes(b"nope")
    with pytest.raises(TrainerError, match="bad header"):
        _records(bad)
    torn = tmp_path / "run-y.wandb"
    torn.write_bytes(b":W&B\xe1\xbe\x00" + b"\x00\x00\x00\x00\x10\x00\x01" + b"short")
    assert _records(torn) == []  # the half-written record is not returned
