from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TrainerError
from trainers.base import TrainerAdapter
from trainers.circuit_breaker.config import CircuitBreakerConfig, MaskMode
from trainers.circuit_breaker.data import Label, Split, WorldConfig, generate_world
from trainers.circuit_breaker.trainer import (
    CircuitBreakerTrainer,
    count_nonfinite,
    encode_ds,
    load_adapter,
    read_log,
    schedule,
)

WORLD = generate_world(
    WorldConfig(
        n_baseline_sft_attacks=2,
        n_baseline_sft_benign=2,
        n_train_attacks=8,
        n_train_adversarial_safe=8,
        n_train_benign=8,
        n_eval_attacks=2,
        n_eval_benign=2,
    )
)
DS = [s for s in WORLD[Split.TRAIN] if s.label is Label.HARMFUL]
DR = [s for s in WORLD[Split.TRAIN] if s.label is Label.RETAIN]
CFG = CircuitBreakerConfig(steps=4, batch_size=4, target_layers=(1,), learning_rate=5e-2)


def test_schedule_reroutes_first_and_retains_later() -> None:
    total, alpha = 100, 4.0
    rr, ret = zip(*(schedule(t, total, alpha) for t in range(total)), strict=True)
    assert rr[0] == alpha and ret[0] == 0.0
    assert all(a > b for a, b in itertools.pairwise(rr))  # c_rr falls
    assert all(a < b for a, b in itertools.pairwise(ret))  # c_retain rises
    assert schedule(total, total, alpha) == (alpha / 2, alpha / 2)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(TrainerError, match="target_layers"):
        CircuitBreakerConfig(target_layers=())
    with pytest.raises(TrainerError, match="alpha=-1"):
        CircuitBreakerConfig(alpha=-1)
    with pytest.raises(TrainerError, match="retain_layers='some'"):
        CircuitBreakerConfig(retain_layers="some")  # type: ignore[arg-type]
    with pytest.raises(TrainerError, match="ce_batch_size=0"):
        CircuitBreakerConfig(ce_batch_size=0)


def test_retain_layers_all_means_every_layer_below_the_final_norm() -> None:
    assert CircuitBreakerConfig().retain_layers_for(4) == (1, 2, 3)
    assert CircuitBreakerConfig(retain_layers=None, target_layers=(2,)).retain_layers_for(4) == (2,)
    with pytest.raises(TrainerError, match=r"layers \[4\]"):
        CircuitBreakerConfig(retain_layers=(4,)).check_model(4)


def test_lr_schedule_warms_up_then_decays() -> None:
    from trainers.circuit_breaker.trainer import _lr_factor

    cfg = CircuitBreakerConfig(steps=10, warmup_steps=2, lr_schedule="cosine")  # type: ignore[arg-type]
    factors = [_lr_factor(t, cfg) for t in range(10)]
    assert factors[0] < factors[1] < factors[2] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors[2:])) and factors[-1] < 0.1
    assert all(_lr_factor(t, CircuitBreakerConfig(steps=10)) == 1.0 for t in range(10))


def test_retain_batches_hold_benign_and_ce_batches_adversarial_safe(tokenizer: Any) -> None:
    from trainers.circuit_breaker.data import RetainKind
    from trainers.circuit_breaker.trainer import encode_dr

    items = encode_dr(tokenizer, DR, max_length=512, ce_on_adversarial_safe=True)
    for sample, item in zip(DR, items, strict=True):
        assert any(item.loss_mask) is (sample.subtype is RetainKind.ADVERSARIAL_SAFE)
    both = encode_dr(tokenizer, DR, max_length=512, ce_on_adversarial_safe=True, ce_on_benign=True)
    assert all(any(i.loss_mask) for i in both)


def test_divergent_suffix_mask_starts_where_the_injected_token_is_predicted(
    tokenizer: Any,
) -> None:
    """The first rerouted position is the last shared token: its state predicts the divergence."""
    from trainers.circuit_breaker.data import Message
    from trainers.circuit_breaker.format_audit import encode_completion

    full = encode_ds(tokenizer, DS, mask_mode=MaskMode.COMPLETION, max_length=512)
    suffix = encode_ds(tokenizer, DS, mask_mode=MaskMode.DIVERGENT_SUFFIX, max_length=512)
    for sample, a, b in zip(DS, full, suffix, strict=True):
        assert a.input_ids == b.input_ids
        first_a, first_b = a.loss_mask.index(1), b.loss_mask.index(1)
        assert first_b > first_a  # at least <|python_tag|> is shared and not rerouted
        assert all(b.loss_mask[first_b:])  # one contiguous suffix to the end
        safe = encode_completion(
            tokenizer,
            sample.prompt_messages,
            Message(role="assistant", tool_calls=[sample.attack.correct_call]),  # type: ignore[union-attr]
        ).input_ids
        harmful = b.input_ids
        assert harmful[: first_b + 1] == safe[: first_b + 1]  # the masked position is shared …
        assert harmful[first_b + 1] != safe[first_b + 1]  # … and predicts the first difference
        shared = tokenizer.decode(harmful[first_a : first_b + 1], skip_special_tokens=False)
        assert shared.startswith('<|python_tag|>{"name": "')


def test_divergent_suffix_without_a_correct_call_reroutes_the_whole_completion(
    tokenizer: Any,
) -> None:
    """No correct call (the user task's answer is text): the choice is made at the last
    prompt position, so the mask starts there and covers the whole injected call."""
    sample = DS[0]
    assert sample.attack is not None
    no_call = sample.model_copy(
        update={"attack": sample.attack.model_copy(update={"correct_call": None})}
    )
    (full,) = encode_ds(tokenizer, [no_call], mask_mode=MaskMode.COMPLETION, max_length=512)
    (item,) = encode_ds(tokenizer, [no_call], mask_mode=MaskMode.DIVERGENT_SUFFIX, max_length=512)
    assert item.loss_mask.index(1) == full.loss_mask.index(1) - 1
    assert all(item.loss_mask[item.loss_mask.index(1) :])


def test_long_samples_lose_their_oldest_tokens_not_the_completion(tokenizer: Any) -> None:
    full = encode_ds(tokenizer, DS[:1], mask_mode=MaskMode.COMPLETION, max_length=10_000)[0]
    n_masked = sum(full.loss_mask)
    cut = encode_ds(tokenizer, DS[:1], mask_mode=MaskMode.COMPLETION, max_length=n_masked + 3)[0]
    assert len(cut.input_ids) == n_masked + 3
    assert cut.input_ids == full.input_ids[-(n_masked + 3) :]
    assert sum(cut.loss_mask) == n_masked  # every completion token is still trained on


@pytest.fixture(scope="module")
def trained(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    trainer = CircuitBreakerTrainer(
        base_model_dir=tiny_dir,
        ds=DS,
        dr=DR,
        out_root=tmp_path_factory.mktemp("cb-out"),
        progress=lambda _m: None,
        use_wandb=False,
    )
    return trainer, trainer.train(CFG)


def test_trainer_is_a_trainer_adapter(trained: Any) -> None:
    assert isinstance(trained[0], TrainerAdapter)


def test_log_has_gate2_fields_and_is_finite(trained: Any) -> None:
    _, art = trained
    rows = read_log(art.log_path)
    assert [r["step"] for r in rows] == list(range(CFG.steps))
    assert art.metrics["device"] in ("cpu", "cuda", "cuda:0")  # the accelerate loop's device
    assert art.metrics["n_retain_l2"] + art.metrics["n_ce_targets"] == len(DR)
    for key in ("rr/cos_sim_mean", "retain/l2", "loss/rr", "loss/retain", "loss/total"):
        assert all(key in r for r in rows), key
    assert count_nonfinite(rows) == 0
    assert rows[0]["c_rr"] > rows[-1]["c_rr"] and rows[0]["c_retain"] < rows[-1]["c_retain"]


def test_parameters_change_and_reference_is_the_adapter_disabled_model(
    trained: Any, tiny_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    _, art = trained
    model = load_adapter(art, tiny_dir)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # PEFT inits B to zero
    base = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    ids = torch.tensor([[1, 5, 9, 17, 33, 65, 129]])
    with torch.no_grad():
        ref = base(input_ids=ids, output_hidden_states=True).hidden_states[1]
        with model.disable_adapter():
            off = model(input_ids=ids, output_hidden_states=True).hidden_states[1]
        on = model(input_ids=ids, output_hidden_states=True).hidden_states[1]
    assert torch.equal(off, ref)
    assert not torch.allclose(on, ref)


def test_second_train_is_cached(trained: Any) -> None:
    trainer, art = trained
    again = trainer.train(CFG)
    assert again.cached and again.digest == art.digest and again.path == art.path


def test_rerouting_off_is_the_adversarial_sft_arm(trained: Any) -> None:
    trainer, _ = trained
    art = trainer.train(replace(CFG, rerouting=False, steps=2))
    rows = read_log(art.log_path)
    assert all("rr/cos_sim_mean" not in r for r in rows)
    assert all("loss/ce_adv_safe" in r for r in rows)


def test_nan_detection_trips_on_injected_nan(tiny_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_dir, poisoned)
    model = AutoModelForCausalLM.from_pretrained(poisoned)
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight[0, 0] = float("nan")
    model.save_pretrained(poisoned)
    trainer = CircuitBreakerTrainer(
        base_model_dir=poisoned,
        ds=DS,
        dr=DR,
        out_root=tmp_path / "out",
        progress=lambda _m: None,
        use_wandb=False,
    )
    with pytest.raises(TrainerError, match="non-finite loss at step 0"):
        trainer.train(CFG)
    logs = list((tmp_path / "out").glob("cb-*/train_log.jsonl"))
    rows = read_log(logs[0])
    assert rows[0]["finite"] is False and count_nonfinite(rows) > 0


def test_early_stopped_capture_matches_transformers_hidden_states(tiny_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.circuit_breaker.trainer import _capture

    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    batch = {
        "input_ids": torch.tensor([[1, 5, 9, 17, 33], [1, 7, 8, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }
    with torch.no_grad():
        full = model(**batch, output_hidden_states=True).hidden_states
        got, logits = _capture(model, model.model.layers, batch, (1, 2), logits=False)
    assert logits is None
    for layer in (1, 2):
        torch.testing.assert_close(got[layer], full[layer])


def test_training_is_logged_to_an_offline_wandb_run(tiny_dir: Path, tmp_path: Path) -> None:
    """Every step's losses reach the W&B run (offline by default); read it back from disk."""
    pytest.importorskip("wandb")
    from trainers.tracking import read_offline_run

    trainer = CircuitBreakerTrainer(
        base_model_dir=tiny_dir, ds=DS, dr=DR, out_root=tmp_path, progress=lambda _m: None
    )
    art = trainer.train(replace(CFG, steps=3))
    record = art.metrics["wandb"]
    assert record["mode"] == "offline" and record["run_dir"], record
    run = read_offline_run(record["run_dir"])
    assert [int(r["_step"]) for r in run.history] == [0, 1, 2]
    assert all("loss/total" in r and "rr/cos_sim_mean" in r for r in run.history)
    assert run.config["steps"] == 3 and run.exit_code == 0
