"""A question → integer-answer accuracy task for *any* HF causal LM (``--model``, forge champion).

Items are ``question`` / ``answer`` pairs — a user JSONL in the shape of
:func:`harness.data.arithmetic.load_jsonl`, or the synthetic arithmetic word
problems of :mod:`harness.data.arithmetic` — rendered with a :class:`QAFormat`
and tokenized by the checkpoint's own tokenizer::

    prompt = prompt_template.format(question=q)      # default "{question}\\nA:"
    target = answer_template.format(answer=a)        # default " {answer}\\n"
    ids    = tokenizer(prompt) + tokenizer(target, add_special_tokens=False)

The two parts are tokenized separately, so the answer span is known exactly
(the default target starts with a space, which BPE tokenizers attach to the
next word, so the split matches joint tokenization for them).  Exact match is
one teacher-forced pass: greedy decoding reproduces the target tokens iff the
argmax at every target position is the target token (the first wrong argmax is
where greedy decoding would diverge), so :func:`exact_match` equals
generate-then-compare.  Rows are right-padded; a causal model never attends to
later positions, so the padding cannot change a prediction.

Splits: ``train`` (QAT), ``dev`` (every knob and the fallback decision) and
``test`` (the gate, evaluated once) are disjoint — by seed range and text for
the synthetic task, by a seeded permutation of the rows for a user file.  For a model
trained elsewhere on the same task (the forge champion), ``exclude`` holds the digests
of the questions it was trained on (:func:`harness.data.arithmetic.question_digest`);
dev and test items with such a question are dropped and counted in ``QATask.excluded``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.data.arithmetic import (
    ArithmeticItem,
    exclude_questions,
    load_jsonl,
    make_splits,
    split_items,
)
from harness.errors import DataValidationError

__all__ = [
    "MIN_ROWS",
    "QAEncoded",
    "QAFormat",
    "QATask",
    "encode",
    "exact_match",
    "load_task",
    "predictions",
    "qa_loss",
]

#: A user task file needs at least this many rows: its 20 % test split must hold enough
#: items for the retention bound to say anything.
MIN_ROWS = 50
SYNTHETIC = "arithmetic"
#: the forge phase's name for the same generated task (trainers/forge/pipeline.py)
FORGE_SYNTHETIC = "arithmetic-word-problems-v1"
ENCODINGS = ("text", "word-digit-lsb-v1")


@dataclass(frozen=True)
class QAFormat:
    """How an item becomes text: the prompt and the target the model must produce greedily."""

    prompt_template: str = "{question}\nA:"
    answer_template: str = " {answer}\n"
    #: ``text`` (the templates above) or ``word-digit-lsb-v1``: the forge champion's
    #: encoding (:class:`trainers.forge.digitlm.DigitVocab` over the tokenizer's vocabulary;
    #: numbers as ``<n>`` digits least-significant first ``</n>``, answers end in ``<eos>``)
    encoding: str = "text"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise DataValidationError(
                f"QAFormat: encoding {self.encoding!r} is not one of {', '.join(ENCODINGS)}"
            )
        if "{question}" not in self.prompt_template or "{answer}" not in self.answer_template:
            raise DataValidationError(
                f"QAFormat: prompt_template {self.prompt_template!r} must contain '{{question}}' "
                f"and answer_template {self.answer_template!r} must contain '{{answer}}'"
            )


@dataclass(frozen=True)
class QATask:
    """The items of the three splits and where they came from (``source`` goes to evidence)."""

    name: str
    source: str
    splits: dict[str, list[ArithmeticItem]]
    fmt: QAFormat
    #: dev/test items dropped because the input model trained on their question
    #: (``{"dev": n, "test": n}``; empty when nothing was excluded)
    excluded: dict[str, int] = field(default_factory=dict)

    def digest(self) -> str:
        h = hashlib.sha256(repr(self.fmt).encode())
        for split in ("train", "dev", "test"):
            for it in self.splits[split]:
                h.update(f"{split}\x00{it.question}\x00{it.answer}\n".encode())
        return h.hexdigest()


def load_task(
    spec: str,
    *,
    seed: int = 0,
    fmt: QAFormat | None = None,
    exclude: frozenset[str] | None = None,
) -> QATask:
    """``"arithmetic"`` / ``"arithmetic:1,2"`` (synthetic, those levels) or a JSONL path.

    ``exclude``: question digests the model trained on; matching dev/test items are
    dropped (module doc).  Errors name the option, the file, the field and the fix.
    """
    task = _load_task(spec, seed=seed, fmt=fmt or QAFormat())
    if exclude is None:
        return task
    splits, dropped = dict(task.splits), {}
    for name in ("dev", "test"):
        splits[name], dropped[name] = exclude_questions(task.splits[name], exclude)
        if not splits[name]:
            raise DataValidationError(
                f"task {spec!r}: every {name} item's question is in the model's training set; "
                "judge it on a task it was not trained on"
            )
    return QATask(task.name, task.source, splits, task.fmt, dropped)


def _load_task(spec: str, *, seed: int, fmt: QAFormat) -> QATask:
    if spec == FORGE_SYNTHETIC:
        spec = SYNTHETIC
    spec = spec.removeprefix("jsonl:")
    if spec == SYNTHETIC or spec.startswith(SYNTHETIC + ":"):
        levels = _levels(spec)
        made = make_splits({"train": 4000, "selection": 300, "held_out": 600}, difficulties=levels)
        splits = {"train": made["train"], "dev": made["selection"], "test": made["held_out"]}
        return QATask(spec, f"harness.data.arithmetic levels {list(levels)}", splits, fmt)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataValidationError(
            f"--compression-task {spec!r}: no such file; pass a JSONL file with 'question' and "
            f"'answer' per line, or '{SYNTHETIC}' for the synthetic arithmetic task"
        )
    items = load_jsonl(path)
    if len(items) < MIN_ROWS:
        raise DataValidationError(
            f"--compression-task {path}: {len(items)} rows; at least {MIN_ROWS} are needed "
            "(60 % train / 20 % dev / 20 % test) for the retention gate to decide anything"
        )
    parts = split_items(items, fractions=(0.6, 0.2, 0.2), seed=seed)
    splits = {"train": parts["train"], "dev": parts["selection"], "test": parts["held_out"]}
    return QATask(path.name, str(path), splits, fmt)


def _levels(spec: str) -> tuple[int, ...]:
    if ":" not in spec:
        return (1, 2, 3, 4)
    try:
        levels = tuple(int(x) for x in spec.split(":", 1)[1].split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or any(lv not in (1, 2, 3, 4) for lv in levels):
        raise DataValidationError(
            f"--compression-task {spec!r}: levels must be a comma list of 1-4, e.g. "
            f"'{SYNTHETIC}:1,2'"
        )
    return levels


@dataclass
class QAEncoded:
    """Right-padded ids, labels (-100 outside the target) and each row's target span."""

    ids: torch.Tensor
    labels: torch.Tensor
    spans: list[tuple[int, int]]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.spans)

    def packed(self) -> torch.Tensor:
        """``(n, 2, L)``: ids and labels in one tensor (what a training batch sample is)."""
        return torch.stack([self.ids, self.labels], dim=1)


def encode(items: Sequence[ArithmeticItem], tokenizer: Any, fmt: QAFormat) -> QAEncoded:
    """Tokenize items (module doc); the pad id is the tokenizer's pad, else its eos, else 0."""
    rows, spans, targets = [], [], []
    digit = _digit_vocab(tokenizer) if fmt.encoding == "word-digit-lsb-v1" else None
    for it in items:
        if digit is not None:
            prompt, target, text = digit.prompt(it.question), digit.target(it.answer), it.answer
        else:
            prompt = list(tokenizer(fmt.prompt_template.format(question=it.question))["input_ids"])
            text = fmt.answer_template.format(answer=it.answer)
            target = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not target:
            raise DataValidationError(f"the tokenizer encodes the target {text!r} as no tokens")
        rows.append(prompt + target)
        spans.append((len(prompt), len(prompt) + len(target)))
        targets.append(text)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, (s, e)) in enumerate(zip(rows, spans, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, s:e] = ids[i, s:e]
    return QAEncoded(ids, labels, spans, targets)


def _digit_vocab(tokenizer: Any) -> Any:
    """The forge champion's DigitVocab, rebuilt from its tokenizer's id → token table."""
    from trainers.forge.digitlm import DigitVocab

    vocab = tokenizer.get_vocab()
    return DigitVocab(tuple(sorted(vocab, key=vocab.__getitem__)))


def qa_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the target tokens of a packed ``(n, 2, L)`` batch (prompt tokens masked)."""
    ids, labels = batch[:, 0], batch[:, 1]
    width = int((labels != -100).nonzero()[:, 1].max()) + 1 if (labels != -100).any() else 1
    loss: torch.Tensor = model(input_ids=ids[:, :width], labels=labels[:, :width]).loss
    return loss


def _argmax(model: nn.Module, enc: QAEncoded, batch: int) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(enc), batch):
            spans = enc.spans[start : start + batch]
            width = max(e for _, e in spans)
            logits = model(input_ids=enc.ids[start : start + batch, :width]).logits
            pred = logits.argmax(-1)
            out += [pred[i, s - 1 : e - 1] for i, (s, e) in enumerate(spans)]
    return out


def exact_match(model: nn.Module, enc: QAEncoded, *, batch: int = 64) -> np.ndarray:
    """Per item: 1 if greedy decoding yields exactly the target tokens (teacher-forced argmax)."""
    preds = _argmax(model, enc, batch)
    return np.array(
        [
            int(torch.equal(p, enc.ids[i, s:e]))
            for i, (p, (s, e)) in enumerate(zip(preds, enc.spans, strict=True))
        ],
        dtype=np.int64,
    )


def predictions(model: nn.Module, enc: QAEncoded, tokenizer: Any, *, batch: int = 64) -> list[str]:
    """The argmax tokens at the target positions, decoded (the greedy answer where it is right)."""
    return [str(tokenizer.decode(p.tolist())) for p in _argmax(model, enc, batch)]
