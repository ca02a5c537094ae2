"""The word/digit tokenizer (an HF fast tokenizer) and the 12 Quiet-STaR thought tokens.

Why this encoding: a character-level tiny Llama stayed at 3–7 % on the arithmetic
task (docs/forge.md); every word and punctuation mark as one token and every integer as
``<n>`` + its digits **least-significant first** + ``</n>`` lets a tiny model add digit
by digit in the order carries flow.  The encoding (``word-digit-lsb-v1``) is the one the
forge phase stores beside its champion as ``forge_vocab.json`` (a token list), so the
champion's vocabulary plugs in unchanged.  It is wrapped in a real
``PreTrainedTokenizerFast`` (WordLevel over whitespace-split pieces) so adding the
thought tokens goes through HF's own ``add_special_tokens`` and
``resize_token_embeddings`` — the path a real checkpoint would take.

:func:`add_thought_tokens` adds ``[thinking]``, ``[/endthinking]`` and ten strategy
tokens, resizes input and output embeddings, initialises the start token from the
embedding of ``"---"`` (Zelikman et al. 2024 §4; the mean over its pieces here) and every
other new row from the mean of the old rows.  When the vocabulary cannot spell ``"---"``
(forge's champion has no ``-``: the pieces would be ``<unk>``, an untrained row that
carries no "pause" meaning), the start row falls back to the mean of the old rows like
the other new tokens; :attr:`AddedTokens.start_init` records which (``"dashes"`` or
``"vocabulary_mean"``).  :func:`roundtrip_failures` lists every way the addition is not
exact (the ``token_roundtrip_failures`` gate counts them).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.errors import DataValidationError

__all__ = [
    "ENCODING",
    "END",
    "FILLER",
    "SPECIALS",
    "START",
    "START_INIT_DASHES",
    "START_INIT_MEAN",
    "STRATEGIES",
    "THOUGHT_TOKENS",
    "AddedTokens",
    "add_thought_tokens",
    "build_tokenizer",
    "fit_vocab",
    "pieces",
    "roundtrip_failures",
    "text_to_ids",
]

ENCODING = "word-digit-lsb-v1"
#: Base special tokens in id order (``<pad>`` = 0), as in forge's vocabulary.
SPECIALS = ("<pad>", "<unk>", "<n>", "</n>", "A:", "<eos>")
START, END = "[thinking]", "[/endthinking]"
#: Ten strategy tokens; program traces use the first six, user traces may use any.
STRATEGIES = (
    "[extract]", "[add]", "[subtract]", "[multiply]", "[divide]", "[conclude]",
    "[plan]", "[track]", "[verify]", "[recall]",
)  # fmt: skip
THOUGHT_TOKENS = (START, END, *STRATEGIES)
#: How the start token's row was initialised (:attr:`AddedTokens.start_init`).
START_INIT_DASHES, START_INIT_MEAN = "dashes", "vocabulary_mean"
#: The neutral filler piece (Pfau et al. 2024 use "..."): one period per position.
FILLER = "."
_PIECE = re.compile(r"\d+|[A-Za-z']+|[^\sA-Za-z\d]")


def pieces(text: str) -> list[str]:
    """``"Ava has 12."`` → ``["Ava", "has", "<n>", "2", "1", "</n>", "."]`` (digits LSB first).

    Bracketed thought tokens (``[add]``) pass through as one piece.
    """
    out: list[str] = []
    for chunk in text.split():
        if chunk in THOUGHT_TOKENS or chunk in SPECIALS:
            out.append(chunk)
            continue
        for p in _PIECE.findall(chunk):
            out += ["<n>", *reversed(p), "</n>"] if p.isdigit() else [p]
    return out


def fit_vocab(texts: Iterable[str]) -> list[str]:
    """Specials, ten digits, then every other piece of ``texts`` sorted (forge's layout)."""
    words = {p for t in texts for p in pieces(t) if not p.isdigit()}
    words -= set(SPECIALS) | set(THOUGHT_TOKENS)
    return [*SPECIALS, *"0123456789", *sorted(words | {"-", FILLER})]


def build_tokenizer(tokens: Sequence[str]) -> Any:
    """A ``PreTrainedTokenizerFast`` whose ids are the positions in ``tokens``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if list(tokens[: len(SPECIALS)]) != list(SPECIALS):
        raise DataValidationError(
            f"vocabulary must start with {SPECIALS} (encoding {ENCODING}); got "
            f"{list(tokens[: len(SPECIALS)])}"
        )
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise DataValidationError("vocabulary has duplicate tokens; each token needs one id")
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        model_max_length=512,
    )


def text_to_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of ``text`` under the word/digit encoding (no BOS/EOS added)."""
    return list(tokenizer(" ".join(pieces(text)), add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class AddedTokens:
    """What :func:`add_thought_tokens` did: the count HF reported, ids, sizes, init source.

    ``start_init`` is ``"dashes"`` (mean of the rows of ``start_init_pieces``, the pieces
    of ``"---"``) or ``"vocabulary_mean"`` (mean of all old rows: ``"---"`` would be
    ``<unk>`` pieces; ``start_init_pieces`` then lists what the tokenizer gave, unused).
    """

    n_added: int
    ids: dict[str, int]
    vocab_before: int
    vocab_after: int
    start_init_pieces: list[str]
    start_init: str = START_INIT_DASHES

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_added": self.n_added,
            "ids": dict(self.ids),
            "vocab_before": self.vocab_before,
            "vocab_after": self.vocab_after,
            "start_init": self.start_init,
            "start_init_pieces": list(self.start_init_pieces),
        }


def _dash_ids(tokenizer: Any) -> list[int] | None:
    """Ids of ``"---"``, or None when the vocabulary cannot spell it (any piece ``<unk>``)."""
    ids = text_to_ids(tokenizer, "---")
    unk = tokenizer.unk_token_id
    return ids if ids and (unk is None or unk not in ids) else None


def add_thought_tokens(model: Any, tokenizer: Any, *, resize: bool = True) -> AddedTokens:
    """Add the 12 thought tokens as special tokens and grow the embeddings (module doc).

    ``resize=False`` exists only for the round-trip gate's control (embeddings left
    too small); the pipeline always resizes.
    """
    before = len(tokenizer)
    n = int(tokenizer.add_special_tokens({"additional_special_tokens": list(THOUGHT_TOKENS)}))
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in THOUGHT_TOKENS}
    dash = _dash_ids(tokenizer)
    if resize:
        emb_in = model.get_input_embeddings().weight.detach().clone()
        emb_out = model.get_output_embeddings().weight.detach().clone()
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            w_in = model.get_input_embeddings().weight
            w_out = model.get_output_embeddings().weight
            w_in[:before] = emb_in
            w_out[:before] = emb_out
            w_in[before:] = emb_in.mean(0)
            w_out[before:] = emb_out.mean(0)
            if dash is not None:
                w_in[ids[START]] = emb_in[dash].mean(0)
    given = text_to_ids(tokenizer, "---")
    return AddedTokens(
        n_added=n,
        ids=ids,
        vocab_before=before,
        vocab_after=len(tokenizer),
        start_init_pieces=[tokenizer.convert_ids_to_tokens(i) for i in given],
        start_init=START_INIT_MEAN if dash is None else START_INIT_DASHES,
    )


def _start_row(added: AddedTokens, tokenizer: Any, old_in: torch.Tensor) -> torch.Tensor:
    """The start row :func:`add_thought_tokens` should have written (``old_in``: old rows)."""
    if added.start_init == START_INIT_MEAN:
        return old_in.mean(0)
    return old_in[[tokenizer.convert_tokens_to_ids(p) for p in added.start_init_pieces]].mean(0)


def roundtrip_failures(
    model: Any, tokenizer: Any, added: AddedTokens, *, reference: Any
) -> list[str]:
    """Every way the token addition is not exact (empty list = exact).

    Checks: 12 new tokens, each encoding to one new id and decoding back to itself;
    input and output embeddings have ``len(tokenizer)`` rows; the old rows are
    unchanged against ``reference`` (the model before the addition); the start row
    equals its recorded initialisation (``"---"`` or the vocabulary mean); and a
    ``save_pretrained`` → ``from_pretrained`` round trip of tokenizer and model gives the
    same ids and bit-identical rows.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bad: list[str] = []
    if added.n_added != len(THOUGHT_TOKENS):
        bad.append(f"tokenizer reported {added.n_added} added tokens, expected 12")
    if added.vocab_after - added.vocab_before != len(THOUGHT_TOKENS):
        bad.append(f"vocabulary grew by {added.vocab_after - added.vocab_before}, not 12")
    for tok, i in added.ids.items():
        enc = tokenizer(f"Ava {tok} 12", add_special_tokens=False)["input_ids"]
        if i < added.vocab_before or enc.count(i) != 1:
            bad.append(f"{tok}: id {i} is not one new id in context (got {enc})")
        if tokenizer.decode([i]) != tok:
            bad.append(f"{tok}: decodes to {tokenizer.decode([i])!r}")
    rows_in = model.get_input_embeddings().weight.detach()
    rows_out = model.get_output_embeddings().weight.detach()
    for name, rows in (("input", rows_in), ("output", rows_out)):
        if rows.shape[0] != len(tokenizer):
            bad.append(f"{name} embeddings have {rows.shape[0]} rows, tokenizer {len(tokenizer)}")
    old_in = reference.get_input_embeddings().weight.detach()
    old_out = reference.get_output_embeddings().weight.detach()
    n_old = added.vocab_before
    if rows_in.shape[0] >= n_old and not torch.equal(rows_in[:n_old], old_in[:n_old]):
        bad.append("old input embedding rows changed")
    if rows_out.shape[0] >= n_old and not torch.equal(rows_out[:n_old], old_out[:n_old]):
        bad.append("old output embedding rows changed")
    start = added.ids[START]
    if rows_in.shape[0] > start and not torch.equal(
        rows_in[start], _start_row(added, tokenizer, old_in)
    ):
        bad.append(f"{START} row is not its {added.start_init} initialisation")
    if bad:
        return bad
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tok2 = AutoTokenizer.from_pretrained(tmp)
        model2 = AutoModelForCausalLM.from_pretrained(tmp)
        for tok, i in added.ids.items():
            if tok2.convert_tokens_to_ids(tok) != i:
                bad.append(f"{tok}: id {tok2.convert_tokens_to_ids(tok)} after reload, was {i}")
        if not torch.equal(model2.get_input_embeddings().weight, rows_in):
            bad.append("input embeddings differ after save/reload")
        if not torch.equal(model2.get_output_embeddings().weight, rows_out):
            bad.append("output embeddings differ after save/reload")
    return bad
