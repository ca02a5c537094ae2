"""Thought-token addition: 12 tokens, resized embeddings, '---' init, exact round trip."""

from __future__ import annotations

import copy
from typing import Any

import torch

from trainers.quiet_star.tokens import (
    START,
    THOUGHT_TOKENS,
    add_thought_tokens,
    pieces,
    roundtrip_failures,
    text_to_ids,
)


def test_pieces_write_numbers_least_significant_digit_first() -> None:
    assert pieces("Ava has 120 apples.") == [
        "Ava",
        "has",
        "<n>",
        "0",
        "2",
        "1",
        "</n>",
        "apples",
        ".",
    ]
    assert pieces("[add] 5") == ["[add]", "<n>", "5", "</n>"]


def test_twelve_tokens_added_with_new_ids_and_rows(tokenised: Any) -> None:
    model, tok, added, reference = tokenised
    assert added.n_added == 12 == len(THOUGHT_TOKENS)
    assert added.vocab_after == added.vocab_before + 12 == len(tok)
    assert sorted(added.ids.values()) == list(range(added.vocab_before, added.vocab_before + 12))
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    assert roundtrip_failures(model, tok, added, reference=reference) == []


def test_start_token_is_initialised_from_dashes(tokenised: Any) -> None:
    model, tok, added, reference = tokenised
    dash = text_to_ids(tok, "---")
    assert added.start_init_pieces == ["-", "-", "-"]
    want = reference.get_input_embeddings().weight[dash].mean(0)
    assert torch.equal(model.get_input_embeddings().weight[added.ids[START]], want)


def test_thought_token_is_one_id_in_running_text(tokenised: Any) -> None:
    _, tok, added, _ = tokenised
    ids = text_to_ids(tok, "Ava [add] 12 [/endthinking]")
    assert added.ids["[add]"] in ids and added.ids["[/endthinking]"] in ids
    assert tok.decode([added.ids["[verify]"]]) == "[verify]"


def test_roundtrip_detects_missing_resize(fresh: Any) -> None:
    model, tok = fresh
    reference = copy.deepcopy(model)
    added = add_thought_tokens(model, tok, resize=False)
    bad = roundtrip_failures(model, tok, added, reference=reference)
    assert any("input embeddings have" in b for b in bad)


def test_roundtrip_detects_changed_old_rows(tokenised: Any) -> None:
    model, tok, added, reference = tokenised
    with torch.no_grad():
        model.get_input_embeddings().weight[3] += 1.0
    assert "old input embedding rows changed" in roundtrip_failures(
        model, tok, added, reference=reference
    )
