"""The fast chat renderer equals the tokenizer's own chat template, token for token."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.code_edit.prompts import Target, messages
from harness.data.code_edit.schema import NormalizedRecord, Split
from trainers.code_edit.trl_common import ChatRenderer, tokenized_rows
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


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> object:
    from transformers import AutoTokenizer

    path: Path = build_tiny_model(TINY, out_dir=tmp_path_factory.mktemp("tiny"))
    return AutoTokenizer.from_pretrained(path)


def _rec(code: str) -> NormalizedRecord:
    return NormalizedRecord.build(
        id="r",
        source="unit",
        language="python",
        instruction="Rename `a` to `b` {{ not jinja }}",
        pre_code=code,
        post_code=code.replace("a", "b"),
        split=Split.TRAIN,
    )


@pytest.mark.parametrize("code", ["a = 1\n", "def f(a):\n    return '{%s}' % a\n"])
def test_renderer_matches_the_template(tokenizer: object, code: str) -> None:
    row = messages(_rec(code), Target.POST_CODE)
    renderer = ChatRenderer(tokenizer)
    for turns, gen in ((row["prompt"], True), (row["prompt"] + row["completion"], False)):
        direct = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            turns, tokenize=False, add_generation_prompt=gen
        )
        assert renderer.render(turns, generation_prompt=gen) == direct


def test_labels_mask_the_prompt_and_long_rows_drop(tokenizer: object) -> None:
    rows, dropped = tokenized_rows([_rec("a = 1\n")], Target.POST_CODE, tokenizer, 4096)
    (row,) = rows
    n_prompt = sum(1 for x in row["labels"] if x == -100)
    assert 0 < n_prompt < len(row["input_ids"]) and not dropped
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    rows, dropped = tokenized_rows([_rec("a = 1\n")], Target.POST_CODE, tokenizer, 8)
    assert rows == [] and dropped == ["r"]
