"""BitNetTrainer: staged QAT, dev-split fallback with rollback, per-layer statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import TrainerError
from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.quant import BitLinear
from trainers.bitnet.task import PROMPT_LEN, encode_items, make_splits, tiny_llama
from trainers.bitnet.trainer import BitNetTrainer, stage_groups

CFG = BitNetConfig(steps_per_stage=3, final_steps=2, batch_size=8, log_every=1)


def _ids(split: str) -> torch.Tensor:
    s = make_splits(seed=0, n_dev=32, n_test=32)[split]
    return torch.from_numpy(encode_items(s.a, s.b))


def _loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch[:, :-1]).logits[:, PROMPT_LEN - 1 :]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, PROMPT_LEN:].reshape(-1))


def _trainer(dev_metric, config: BitNetConfig = CFG) -> BitNetTrainer:  # type: ignore[no-untyped-def]
    train = _ids("train")
    return BitNetTrainer(
        config,
        loss_fn=_loss,
        dev_metric=dev_metric,
        sample_batch=lambda g, n: train[torch.randint(0, len(train), (n,), generator=g)],
        probe=_ids("dev")[:, :-1],
    )


def _model() -> nn.Module:
    return tiny_llama(hidden=16, layers=2, heads=2, intermediate=32, seed=0)


def test_stage_groups_are_decoder_blocks() -> None:
    names = ["model.layers.0.q", "model.layers.0.k", "model.layers.1.q", "head"]
    assert stage_groups(names) == [
        ["model.layers.0.q", "model.layers.0.k"],
        ["model.layers.1.q"],
        ["head"],
    ]


def test_every_block_accepted_within_budget() -> None:
    fp = _model()
    before = {k: v.clone() for k, v in fp.state_dict().items()}
    result = _trainer(lambda m: 1.0).train(fp)
    assert [s.accepted for s in result.stages] == [True, True]
    assert len(result.ternary_layers) == 14 and result.fallback_layers == []
    assert all(isinstance(result.model.get_submodule(n), BitLinear) for n in result.ternary_layers)
    assert all(torch.equal(before[k], v) for k, v in fp.state_dict().items())  # input untouched
    stat = result.layers[0]
    assert 0.0 <= stat.sparsity <= 1.0 and stat.scale is not None and -1 <= stat.cosine <= 1
    losses = [r["loss"] for r in result.log if "loss" in r]
    assert len(losses) == 2 * 3 + 2 and all(torch.isfinite(torch.tensor(losses)))


def test_a_stage_over_budget_is_rolled_back_and_listed() -> None:
    def dev(model: nn.Module) -> float:  # block 1 ternary "costs" all accuracy
        return (
            0.0
            if isinstance(model.get_submodule("model.layers.1.mlp.down_proj"), BitLinear)
            else 1.0
        )

    result = _trainer(dev).train(_model())
    assert [s.accepted for s in result.stages] == [True, False]
    assert [s.rounds for s in result.stages] == [1, CFG.stage_rounds]
    assert result.stages[1].dev_metric == 0.0 and result.stages[1].threshold == pytest.approx(0.95)
    assert sorted(result.fallback_layers) == sorted(result.stages[1].layers)
    for name in result.fallback_layers:
        mod = result.model.get_submodule(name)
        assert type(mod) is nn.Linear
        assert torch.equal(mod.weight, mod.weight.to(torch.bfloat16).float())  # stored precision
    assert result.final_dev_metric == 1.0


def test_diverging_loss_is_an_error() -> None:
    train = _ids("train")
    trainer = BitNetTrainer(
        CFG,
        loss_fn=lambda m, b: _loss(m, b) * float("nan"),
        dev_metric=lambda m: 1.0,
        sample_batch=lambda g, n: train[:n],
        probe=train[:4, :-1],
    )
    with pytest.raises(TrainerError, match="diverged"):
        trainer.train(_model())


def test_config_rejects_bad_values() -> None:
    with pytest.raises(TrainerError, match="dev_budget"):
        BitNetConfig(dev_budget=1.5)
    with pytest.raises(TrainerError, match="high_precision"):
        BitNetConfig(high_precision="int4")
