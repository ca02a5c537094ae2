"""Thought-token addition: 12 tokens, resized embeddings, '---' init, exact round trip."""

from __future__ import annotations

import copy
from typing import Any

import torch

from trainers.quiet_star.base_model import tiny_model
from trainers.quiet_star.tokens import (
    START,
    START_INIT_DASHES,
    START_INIT_MEAN,
    THOUGHT_TOKENS,
    add_thought_tokens,
    build_tokenizer,
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
    assert added.start_init == START_INIT_DASHES
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


def _without_dash(items: list[Any]) -> tuple[Any, Any]:
    """A model and tokenizer whose vocabulary has no '-' (as forge's champion)."""
    start = tiny_model(items, hidden=16, layers=1, heads=2, seed=0)
    tokens = [start.tokenizer.convert_ids_to_tokens(i) for i in range(len(start.tokenizer))]
    keep = [i for i, t in enumerate(tokens) if t != "-"]
    tok = build_tokenizer([tokens[i] for i in keep])
    model = start.model
    old_in = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(len(keep))
    with torch.no_grad():
        model.get_input_embeddings().weight[:] = old_in[keep]
    return model, tok


def test_start_token_falls_back_to_vocabulary_mean_without_dashes(items: list[Any]) -> None:
    """'---' would be <unk> pieces: the start row is the mean of the old rows, recorded so."""
    model, tok = _without_dash(items)
    assert text_to_ids(tok, "---") == [tok.unk_token_id] * 3
    reference = copy.deepcopy(model)
    added = add_thought_tokens(model, tok)
    assert added.start_init == START_INIT_MEAN
    assert added.to_dict()["start_init"] == START_INIT_MEAN
    old = reference.get_input_embeddings().weight
    row = model.get_input_embeddings().weight[added.ids[START]]
    assert torch.equal(row, old.mean(0))
    assert not torch.equal(row, old[tok.unk_token_id])
    assert roundtrip_failures(model, tok, added, reference=reference) == []


def test_roundtrip_detects_a_start_row_not_from_its_init(items: list[Any]) -> None:
    model, tok = _without_dash(items)
    reference = copy.deepcopy(model)
    added = add_thought_tokens(model, tok)
    with torch.no_grad():  # the old behaviour: the <unk> row
        w = model.get_input_embeddings().weight
        w[added.ids[START]] = w[tok.unk_token_id]
    bad = roundtrip_failures(model, tok, added, reference=reference)
    assert bad == [f"{START} row is not its {START_INIT_MEAN} initialisation"]
