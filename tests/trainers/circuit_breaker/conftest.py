"""Shared tiny model for the circuit-breaker tests: built once per session, real weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.tiny import TinyModelConfig, build_tiny_model

TINY = TinyModelConfig(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    initializer_range=0.05,
    corpus_snippets=20,
)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(TINY, out_dir=tmp_path_factory.getbasetemp() / "cb-tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)
