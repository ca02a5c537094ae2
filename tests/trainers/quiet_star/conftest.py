"""A tokenizer over the arithmetic task and a 1-layer Llama with the thought tokens added."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from harness.data.arithmetic import make_splits
from trainers.quiet_star.base_model import tiny_model
from trainers.quiet_star.tokens import add_thought_tokens


@pytest.fixture(scope="module")
def items() -> list[Any]:
    return make_splits({"train": 300, "held_out": 20}, difficulties=(1, 2))["train"]


@pytest.fixture()
def fresh(items: list[Any]) -> Any:
    """(model, tokenizer) before the thought tokens exist."""
    start = tiny_model(items, hidden=16, layers=1, heads=2, seed=0)
    return start.model, start.tokenizer


@pytest.fixture()
def tokenised(fresh: Any) -> Any:
    """(model, tokenizer, added, reference model before the addition)."""
    model, tok = fresh
    reference = copy.deepcopy(model)
    torch.manual_seed(0)
    added = add_thought_tokens(model, tok)
    model.eval()
    return model, tok, added, reference
