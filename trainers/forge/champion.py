"""The forge champion on disk: the contract other phases read as their default input.

Layout (``root`` = ``get_settings().models_dir / "forge"``)::

    <root>/champion/            a normal Hugging Face checkpoint directory
        config.json, model.safetensors, generation_config.json   (save_pretrained)
        tokenizer.json, tokenizer_config.json, special_tokens_map.json
                                 (PreTrainedTokenizerFast, word-level; see below)
        forge_vocab.json         the encoding name and token list
        champion.json            a copy of the manifest (the directory describes itself)
    <root>/champion.json         the manifest — the contract

The directory is published with :func:`harness.atomic.atomic_dir` (a reader sees the
old or the new checkpoint, never a mix), then the sibling manifest with an atomic
write.  Manifest fields (:class:`ChampionManifest`): ``cache_key`` (of the forge run
that made it), ``task``, ``held_out_accuracy``, ``created_by`` and more.

**Encoding.**  The model reads word/digit tokens with numbers written
least-significant digit first (:mod:`trainers.forge.digitlm`).  The HF tokenizer
splits on whitespace only, so feed it :meth:`DigitVocab.render` text
(``"Ava has <n> 2 1 </n> apples . … A:"``); its ids equal :meth:`DigitVocab.prompt`.
Generated answers are ``<n> d₀ d₁ … </n> <eos>`` (reverse the digits; or use
:meth:`DigitVocab.decode_answer`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from harness.atomic import atomic_dir, atomic_write_json
from harness.errors import TrainerError
from harness.settings import get_settings
from trainers.forge.digitlm import DigitVocab

if TYPE_CHECKING:
    import torch

__all__ = [
    "MANIFEST_NAME",
    "ChampionManifest",
    "champion_dir",
    "hf_tokenizer",
    "read_manifest",
    "write_champion",
]

MANIFEST_NAME = "champion.json"


class ChampionManifest(BaseModel):
    """What the champion is and how it was judged (the sibling ``champion.json``)."""

    model_config = ConfigDict(extra="allow")

    cache_key: str
    task: str
    held_out_accuracy: float
    created_by: str
    encoding: str = "word-digit-lsb-v1"
    selection_accuracy: float | None = None
    best_parent_held_out_accuracy: float | None = None
    held_out_items: int | None = None


def champion_dir(models_dir: Path | None = None) -> Path:
    """``<models_dir>/forge/champion`` (default ``models_dir`` from the settings)."""
    return (models_dir or get_settings().models_dir) / "forge" / "champion"


def hf_tokenizer(vocab: DigitVocab) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``vocab`` (word-level, whitespace pre-tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab.tokens)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )


def write_champion(
    model: torch.nn.Module, vocab: DigitVocab, manifest: ChampionManifest, *, directory: Path
) -> Path:
    """Publish checkpoint + tokenizer + manifest atomically at ``directory``; returns it."""
    body = manifest.model_dump(mode="json")
    with atomic_dir(directory) as tmp:
        model.save_pretrained(tmp)  # type: ignore[operator]
        hf_tokenizer(vocab).save_pretrained(tmp)
        (tmp / "forge_vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
        (tmp / MANIFEST_NAME).write_text(json.dumps(body, indent=2), encoding="utf-8")
    atomic_write_json(directory.parent / MANIFEST_NAME, body)
    return directory


def read_manifest(directory: Path | None = None) -> ChampionManifest:
    """The manifest beside ``directory`` (default :func:`champion_dir`); errors say the fix."""
    d = directory or champion_dir()
    path = d.parent / MANIFEST_NAME
    if not path.is_file():
        raise TrainerError(
            f"{path}: no forge champion manifest; run `harness run --phase forge` to make one "
            f"(or set HARNESS_MODELS_DIR to where it was written)."
        )
    return ChampionManifest.model_validate_json(path.read_text(encoding="utf-8"))
