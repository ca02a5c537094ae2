"""Frankenmerge, DFS, the 8-combo composition and degenerate-merge detection."""

from __future__ import annotations

import pytest
import torch

from harness.errors import TrainerError
from trainers.merge.combos import ALL_COMBOS, ComboRegistry, MergeRecipe, compose
from trainers.merge.degenerate import detect_degenerate, merge_or_fallback
from trainers.merge.layers import dfs, frankenmerge, layer_count


def _model(tag: float, depth: int = 3) -> dict[str, torch.Tensor]:
    """A Llama-shaped state dict whose layer i holds the value tag + i (so picks are visible)."""
    sd = {"model.embed_tokens.weight": torch.full((4, 2), tag), "lm_head.weight": torch.ones(4, 2)}
    for i in range(depth):
        sd[f"model.layers.{i}.mlp.weight"] = torch.full((2, 2), tag + i)
        sd[f"model.layers.{i}.norm.weight"] = torch.full((2,), tag + i)
    return sd


def test_frankenmerge_takes_each_layer_from_the_chosen_parent() -> None:
    a, b = _model(10.0), _model(20.0)
    out = frankenmerge([a, b], [1, 0, 1])
    assert [float(out[f"model.layers.{i}.mlp.weight"][0, 0]) for i in range(3)] == [20, 11, 22]
    assert float(out["model.embed_tokens.weight"][0, 0]) == 10.0  # non-layer from sources[0]
    assert set(out) == set(a)
    with pytest.raises(TrainerError, match="choices"):
        frankenmerge([a, b], [0, 1])


def test_dfs_builds_the_stack_from_the_path_and_can_change_depth() -> None:
    a, b = _model(10.0), _model(20.0)
    out = dfs([a, b], [(0, 0), (1, 2), (1, 2), (0, 1)])
    assert layer_count(out) == 4
    vals = [float(out[f"model.layers.{i}.norm.weight"][0]) for i in range(4)]
    assert vals == [10, 22, 22, 11]
    out["model.layers.1.norm.weight"][0] = -1.0  # copies, not views of the parent
    assert float(b["model.layers.2.norm.weight"][0]) == 22.0
    with pytest.raises(TrainerError, match="layer 5"):
        dfs([a, b], [(0, 5)])
    with pytest.raises(TrainerError, match="source 2"):
        dfs([a, b], [(2, 0)])


def test_eight_distinct_combos_and_registry_counts_them() -> None:
    assert len(set(ALL_COMBOS)) == 8
    base = _model(0.0)
    parents = [_model(1.0), _model(3.0), _model(5.0)]
    reg = ComboRegistry()
    for seed, combo in enumerate(ALL_COMBOS[:7]):
        out = compose(parents, MergeRecipe(combo, seed=seed), base=base, registry=reg)
        assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in base.items()}
    assert reg.used == 7 and not reg.all_used
    compose(parents, MergeRecipe(ALL_COMBOS[7], seed=9), base=base, registry=reg)
    compose(parents, MergeRecipe(ALL_COMBOS[7], seed=9), base=base, registry=reg)
    assert reg.all_used and reg.as_dict()["slerp+dare+dfs"] == 2


def test_compose_is_reproducible_and_uses_each_stage() -> None:
    base = _model(0.0)
    parents = [_model(1.0), _model(3.0)]
    combo = ALL_COMBOS[0]  # linear+ties+frankenmerge
    r1 = compose(parents, MergeRecipe(combo, seed=4), base=base)
    r2 = compose(parents, MergeRecipe(combo, seed=4), base=base)
    assert all(torch.equal(r1[k], r2[k]) for k in r1)
    # choice 2 picks parent 0 (value 1 + i); choice 0 the linear mean (2 + i)
    r3 = compose(parents, MergeRecipe(combo, seed=0, layer_choice=(2, 0, 3)), base=base)
    got = [float(r3[f"model.layers.{i}.mlp.weight"][0, 0]) for i in range(3)]
    assert got == [1.0, 3.0, 5.0]
    with pytest.raises(TrainerError, match="2 parents"):
        compose(parents[:1], MergeRecipe(combo, seed=0), base=base)


def test_all_combos_load_into_a_real_tiny_llama() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    base = LlamaForCausalLM(cfg).state_dict()
    parents = []
    for s in (1, 2, 3):
        g = torch.Generator().manual_seed(s)
        parents.append({k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in base.items()})
    model = LlamaForCausalLM(cfg)
    ids = torch.arange(8).reshape(1, 8)
    for seed, combo in enumerate(ALL_COMBOS):
        model.load_state_dict(compose(parents, MergeRecipe(combo, seed=seed), base=base))
        with torch.no_grad():
            assert bool(model(ids).logits.isfinite().all()), combo.name


def test_degenerate_merges_are_detected_and_fall_back() -> None:
    a, b = _model(1.0), _model(2.0)
    assert detect_degenerate(a, references=[a, b]).ok
    nan = {**a, "lm_head.weight": torch.full((4, 2), float("nan"))}
    assert "non-finite" in detect_degenerate(nan, references=[a, b]).problems[0]
    zeroed = {k: v * 1e-4 for k, v in a.items()}
    assert "collapsed norm" in detect_degenerate(zeroed, references=[a, b]).problems[0]
    huge = {k: v * 1e4 for k, v in a.items()}
    assert "exploded norm" in detect_degenerate(huge, references=[a, b]).problems[0]

    x = torch.randn(5, 2)

    def probe(sd: dict[str, torch.Tensor]) -> torch.Tensor:
        return x @ sd["model.layers.0.mlp.weight"]

    const = {**a, "model.layers.0.mlp.weight": torch.zeros(2, 2)}
    const_ref = {**a, "model.layers.0.mlp.weight": torch.zeros(2, 2)}
    rep = detect_degenerate(const, references=[const_ref], probe=probe)
    assert rep.problems and "constant outputs" in rep.problems[0]

    outcome = merge_or_fallback(lambda: nan, fallback=b, references=[a, b])
    assert outcome.used_fallback and not outcome.report.ok
    assert torch.equal(outcome.state_dict["lm_head.weight"], b["lm_head.weight"])
    healthy = merge_or_fallback(lambda: dict(a), fallback=b, references=[a, b], probe=probe)
    assert not healthy.used_fallback
