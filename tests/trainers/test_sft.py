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
