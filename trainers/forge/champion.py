"""The forge champion on disk: the contract other phases read as their default input.

Layout (``root`` = ``get_settings().models_dir / "forge"``)::

    <root>/champion/            a normal Hugging Face checkpoint directory
        config.json, model.safetensors, generation_config.json   (save_pretrained)
        tokenizer.json, tokenizer_config.json, special_tokens_map.json
                                 (PreTrainedTokenizerFast, word-level; see below)
        forge_vocab.json         the encoding name and token list
        train_questions.sha256.gz  sorted sha256 digests of the normalised questions the
                                 champion was trained on (forge's train split;
                                 :func:`harness.data.arithmetic.question_digest`)
        champion.json            a copy of the manifest (the directory describes itself)
    <root>/champion.json         the manifest — the contract

The directory is published with :func:`harness.atomic.atomic_dir` (a reader sees the
old or the new checkpoint, never a mix), then the sibling manifest with an atomic
write.  Manifest fields (:class:`ChampionManifest`): ``cache_key`` (of the forge run
that made it), ``task``, ``held_out_accuracy``, ``created_by``, ``train_questions``
(file name, sha256 and count of the question-digest file) and more.

**Why the question set.**  A consumer that judges the champion on its own split of the
same task (compression, forge_reasoning) draws that split in a separate
:func:`~harness.data.arithmetic.make_splits` call, which cannot deduplicate against
forge's training data; it drops its dev/test items whose question is in this set
(:func:`question_set`) and records how many.

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
from harness.data.arithmetic import read_question_digests, write_question_digests
from harness.errors import DataValidationError, TrainerError
from harness.settings import get_settings
from trainers.forge.digitlm import DigitVocab

if TYPE_CHECKING:
    import torch

__all__ = [
    "MANIFEST_NAME",
    "QUESTIONS_NAME",
    "ChampionManifest",
    "champion_dir",
    "hf_tokenizer",
    "question_set",
    "read_manifest",
    "write_champion",
]

MANIFEST_NAME = "champion.json"
QUESTIONS_NAME = "train_questions.sha256.gz"


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
    #: ``{"file", "sha256", "count", "splits"}`` of the question-digest file (set by
    #: :func:`write_champion`); ``None`` in champions written before it existed
    train_questions: dict[str, Any] | None = None


def champion_dir(models_dir: Path | None = None) -> Path:
    """``<models_dir>/forge/champion`` (default ``models_dir`` from the settings)."""
    return (models_dir or get_settings().models_dir) / "forge" / "champion"


def hf_tokenizer(vocab: DigitVocab) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``vocab`` (word-level, whitespace pre-tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab.tokens)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call, unused-ignore]
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )


def write_champion(
    model: torch.nn.Module,
    vocab: DigitVocab,
    manifest: ChampionManifest,
    *,
    directory: Path,
    train_questions: list[str],
    question_splits: tuple[str, ...] = ("train",),
) -> Path:
    """Publish checkpoint, tokenizer, question digests and manifest atomically at ``directory``.

    ``train_questions``: every question the champion was trained on (the ``question_splits``);
    their digests go to :data:`QUESTIONS_NAME`, named in the manifest.
    """
    with atomic_dir(directory) as tmp:
        model.save_pretrained(tmp)  # type: ignore[operator]
        hf_tokenizer(vocab).save_pretrained(tmp)
        (tmp / "forge_vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
        sha, count = write_question_digests(tmp / QUESTIONS_NAME, train_questions)
        manifest = manifest.model_copy(
            update={
                "train_questions": {
                    "file": QUESTIONS_NAME, "sha256": sha, "count": count,
                    "splits": list(question_splits),
                }
            }
        )  # fmt: skip
        body = manifest.model_dump(mode="json")
        (tmp / MANIFEST_NAME).write_text(json.dumps(body, indent=2), encoding="utf-8")
    atomic_write_json(directory.parent / MANIFEST_NAME, body)
    return directory


def question_set(directory: Path, manifest: dict[str, Any]) -> frozenset[str] | None:
    """The champion's training-question digests, or ``None`` for a champion without them.

    ``None`` means an older champion (written before the file existed): the consumer uses
    it and records a warning that overlap with its task could not be checked.  A manifest
    that names the file but whose file is missing or altered is an error.
    """
    spec = manifest.get("train_questions")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("sha256"), str):
        raise DataValidationError(
            f"{directory.parent / MANIFEST_NAME}: field 'train_questions'={spec!r} must be an "
            "object with 'file' and 'sha256'; re-run the forge phase to rewrite the champion"
        )
    name = str(spec.get("file", QUESTIONS_NAME))
    if Path(name).name != name:
        raise DataValidationError(
            f"{directory.parent / MANIFEST_NAME}: field 'train_questions.file'={name!r} must be "
            "a file name inside the champion directory"
        )
    return read_question_digests(directory / name, sha256=spec["sha256"])


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
