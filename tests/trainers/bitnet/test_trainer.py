"""BitNetTrainer: staged QAT, dev-split fallback with rollback, per-layer statistics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import TrainerError
from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.quant import BitLinear
from trainers.bitnet.task import PROMPT_LEN, encode_items, make_splits, tiny_llama
from trainers.bitnet.trainer import BitNetTrainer, split_stages

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


def test_split_stages_cuts_the_order_into_near_equal_groups() -> None:
    order = [f"l{i}" for i in range(7)]
    assert split_stages(order, 3) == [["l0", "l1", "l2"], ["l3", "l4"], ["l5", "l6"]]
    assert split_stages(order[:2], 5) == [["l0"], ["l1"]]
    assert split_stages(order, 1) == [order]


def test_every_block_accepted_within_budget() -> None:
    fp = _model()
    before = {k: v.clone() for k, v in fp.state_dict().items()}
    result = _trainer(lambda m: 1.0).train(fp)
    assert [s.accepted for s in result.stages] == [True, True]
    assert sorted(result.sensitivity) == sorted(result.ternary_layers)
    order = [n for s in result.stages for n in s.layers]  # least sensitive first
    assert [result.sensitivity[n] for n in order] == sorted(result.sensitivity.values())
    assert sorted(result.stages[1].cosines) == sorted(order)  # every ternary layer so far
    assert len(result.ternary_layers) == 14 and result.fallback_layers == []
    assert all(isinstance(result.model.get_submodule(n), BitLinear) for n in result.ternary_layers)
    assert all(torch.equal(before[k], v) for k, v in fp.state_dict().items())  # input untouched
    stat = result.layers[0]
    assert 0.0 <= stat.sparsity <= 1.0 and stat.scale is not None and -1 <= stat.cosine <= 1
    losses = [r["loss"] for r in result.log if "loss" in r]
    assert len(losses) == 2 * 3 + 2 and all(torch.isfinite(torch.tensor(losses)))


def test_one_layer_over_budget_is_isolated_by_bisection_and_kept() -> None:
    bad = "model.layers.1.mlp.down_proj"

    def dev(model: nn.Module) -> float:  # this one layer ternary "costs" all accuracy
        return 0.0 if isinstance(model.get_submodule(bad), BitLinear) else 1.0

    result = _trainer(dev).train(_model())
    assert result.fallback_layers == [bad]
    assert len(result.ternary_layers) == 13
    rejected = [s for s in result.stages if not s.accepted]
    assert [len(s.layers) for s in rejected][-1] == 1 and rejected[-1].layers == [bad]
    assert all(bad in s.layers for s in rejected)  # bisection only follows the bad half
    assert all(s.rounds == CFG.stage_rounds for s in rejected)
    assert rejected[0].dev_metric == 0.0 and rejected[0].threshold == pytest.approx(0.95)
    mod = result.model.get_submodule(bad)
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


class _Toy(nn.Module):
    """fc1 → ReLU → per-feature gain (a norm weight: never ternary) → fc2 → fc3 → head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 32)
        self.gain = nn.Parameter(torch.ones(32))
        self.head = nn.Linear(32, 4)

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        h = torch.relu(self.fc1(input_ids)) * self.gain
        h = torch.relu(self.fc3(torch.relu(self.fc2(h))))
        return SimpleNamespace(logits=self.head(h))


def _toy_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    teacher = torch.randn(8, 4, generator=torch.Generator().manual_seed(99))
    return torch.cat([x, (x @ teacher).argmax(1, keepdim=True).float()], dim=1)


def _toy_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(input_ids=batch[:, :8]).logits, batch[:, 8].long())


def test_a_deliberately_sensitive_layer_stays_in_high_precision() -> None:
    """fc2 made sensitive by a function-preserving rescale that ternary weights cannot carry.

    Half of fc2's inputs are multiplied by 10⁴ (the gain, which stays full precision)
    and fc2's matching weight columns divided by 10⁴: the full-precision function is
    unchanged, but a per-tensor absmean scale rounds those columns to 0 and the
    per-token absmax activation scale rounds the other inputs to 0 — the ternary fc2
    outputs almost nothing.  fc1 and fc3 are ordinary and must become ternary.
    """
    train, dev = _toy_data(2000, 0), _toy_data(500, 1)
    model = _Toy()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(300):
        loss = _toy_loss(model, train[(i * 64) % 1936 : (i * 64) % 1936 + 64])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    def accuracy(m: nn.Module) -> float:
        with torch.no_grad():
            pred = m(input_ids=dev[:, :8]).logits.argmax(1)
        return float((pred == dev[:, 8].long()).float().mean())

    model.eval()
    before = accuracy(model)
    with torch.no_grad():
        model.gain[:16] *= 1e4
        model.fc2.weight[:, :16] /= 1e4
    assert accuracy(model) == pytest.approx(before, abs=0.01) and before > 0.8
    cfg = BitNetConfig(
        stages=1, steps_per_stage=20, stage_rounds=2, final_steps=12, lr=1e-4, batch_size=64,
        dev_budget=0.25, high_precision="float32",
    )  # fmt: skip
    result = BitNetTrainer(
        cfg,
        loss_fn=_toy_loss,
        dev_metric=accuracy,
        sample_batch=lambda g, n: train[torch.randint(0, len(train), (n,), generator=g)],
        probe=dev[:256, :8],
    ).train(model)
    assert max(result.sensitivity, key=result.sensitivity.__getitem__) == "fc2"
    assert result.fallback_layers == ["fc2"]
    assert sorted(result.ternary_layers) == ["fc1", "fc3"]
    assert result.final_dev_metric >= 0.75 * before
    assert result.stages[0].layers[-1] == "fc2" and not result.stages[0].accepted
