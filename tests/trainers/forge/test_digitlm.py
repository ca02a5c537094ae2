"""Word/digit encoding, batched greedy decoding vs teacher-forced exact match, HF tokenizer."""

from __future__ import annotations

import pytest
import torch

from harness.data.arithmetic import ArithmeticItem, generate_item, make_splits
from harness.errors import DataValidationError
from trainers.forge.digitlm import (
    DigitVocab,
    encode,
    exact_match,
    greedy_answers,
    make_llama,
    train_steps,
)


def _vocab() -> DigitVocab:
    return DigitVocab.fit(generate_item(s, 1 + s % 4).question for s in range(200))


def test_numbers_are_digits_least_significant_first() -> None:
    v = _vocab()
    ids = v.prompt("Ava has 120 apples.")
    toks = [v.tokens[i] for i in ids]
    assert toks == ["Ava", "has", "<n>", "0", "2", "1", "</n>", "apples", ".", "A:"]
    assert v.decode_answer(v.target("305")[:-1]) == "305"
    assert v.decode_answer([v.id("<n>"), v.id("apples"), v.id("</n>")]) is None
    assert v.id("zebra") == v.id("<unk>")
    with pytest.raises(DataValidationError, match="not a non-negative integer"):
        v.target("-3")


def test_encode_masks_everything_but_the_answer_and_truncates_the_prompt_start() -> None:
    v = _vocab()
    items = [generate_item(0, 1), generate_item(1, 4)]
    b = encode(v, items, max_len=20)
    for i, it in enumerate(items):
        s, e = b.spans[i]
        assert b.labels[i, s:e].tolist() == v.target(it.answer)
        assert (b.labels[i, :s] == -100).all() and (b.labels[i, e:] == -100).all()
        assert e <= 20
        assert b.ids[i, s - 1].item() == v.id("A:")


def test_greedy_decoding_agrees_with_teacher_forced_exact_match() -> None:
    torch.set_num_threads(1)
    sp = make_splits({"train": 400, "held_out": 40}, difficulties=(1,))
    v = DigitVocab.fit(it.question for it in sp["train"])
    model = make_llama(v, hidden=32, layers=1, heads=2, seed=0, context=64)
    train_steps(model, v, sp["train"], steps=40, batch=32, lr=1e-2, max_len=64)
    ok = exact_match(model, v, sp["held_out"], max_len=64)
    answers = greedy_answers(model, v, sp["held_out"], max_len=64)
    assert ok == [a == it.answer for a, it in zip(answers, sp["held_out"], strict=True)]


def test_hf_tokenizer_reads_rendered_prompts_to_the_same_ids() -> None:
    from trainers.forge.champion import hf_tokenizer

    v = _vocab()
    tok = hf_tokenizer(v)
    for item in (generate_item(5, 2), generate_item(6, 4), ArithmeticItem("Zed has 7 cats.", "7")):
        assert tok(v.render(item.question))["input_ids"] == v.prompt(item.question)
