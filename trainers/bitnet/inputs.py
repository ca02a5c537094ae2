"""Which model the compression phase compresses, and why (recorded in the evidence).

Three inputs, in this order:

1. ``--model DIR`` (or ``HARNESS_MODEL``): any HF causal LM checkpoint directory that
   ``AutoModelForCausalLM`` and ``AutoTokenizer`` load, judged on ``--compression-task``
   (a question/answer JSONL, or ``arithmetic``; default ``arithmetic``).  Problems are
   errors naming the option, the file or field, and the fix.
2. The forge phase's champion, ``<models_dir>/forge/champion/`` with a ``champion.json``
   manifest (``cache_key``, ``task``, ``held_out_accuracy``; optional ``prompt_template`` /
   ``answer_template``), when its full-precision accuracy on the manifest's task — measured
   here on the task's **dev** split, never on the judged split — is at least
   :data:`MIN_FP_ACCURACY`.  A retention ratio of a model that is mostly wrong says
   nothing about compression (0.1 → 0.09 "retains 90 %"), so a weaker champion is not used.
3. Otherwise the embedded tiny model the phase trains itself; the evidence says why the
   champion was not used (absent, unreadable, too weak).

The champion was trained on forge's own split of the same task, drawn by a separate
call, so some of this phase's dev/test questions can be ones it trained on.  Its
directory carries the digests of those questions (``train_questions`` in the
manifest); matching dev/test items are dropped before anything is measured, and
``CompressionInput.overlap`` records how many from which split.  A champion without
the file (written before it existed) is still used, with ``overlap["warning"]`` saying
the overlap was not checked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import DataValidationError, HarnessError

if TYPE_CHECKING:
    from trainers.bitnet.qa_task import QATask

__all__ = [
    "CHAMPION_MANIFEST",
    "MIN_FP_ACCURACY",
    "CompressionInput",
    "InputError",
    "champion_dir",
    "check_checkpoint",
    "default_input",
    "read_champion",
    "task_spec",
]

#: The full-precision accuracy below which the retention gate would be meaningless.
MIN_FP_ACCURACY = 0.5
CHAMPION_MANIFEST = "champion.json"
_MANIFEST_FIELDS = ("cache_key", "task", "held_out_accuracy")


class InputError(HarnessError):
    """A compression input that cannot be used (names the option/file/field and the fix)."""


@dataclass
class CompressionInput:
    """The model the phase compresses: ``embedded``, ``checkpoint`` (``--model``) or ``forge``."""

    kind: str
    reason: str
    path: str | None = None
    task: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    fp_dev_accuracy: float | None = None
    #: training-question overlap removed from the task (forge champion only; module doc)
    overlap: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_dir(models_dir: Path) -> Path:
    """Where the forge phase saves its champion (``<models_dir>/forge/champion``)."""
    return Path(models_dir) / "forge" / "champion"


def check_checkpoint(path: Path, *, option: str = "--model") -> None:
    """Raise :class:`InputError` unless ``path`` is a causal LM checkpoint with a tokenizer."""
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    fix = "pass a directory written by model.save_pretrained(DIR) + tokenizer.save_pretrained(DIR)"
    if not path.exists():
        raise InputError(f"{option} {path}: no such directory; {fix}")
    if not path.is_dir():
        raise InputError(f"{option} {path}: is a file, not a checkpoint directory; {fix}")
    if not (path / "config.json").is_file():
        raise InputError(f"{option} {path}: no config.json in the directory; {fix}")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"{option} {path}/config.json: not a readable HF config ({exc}); {fix}"
        ) from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InputError(
            f"{option} {path}: config.json model_type={model_type!r} "
            f"(architectures={getattr(config, 'architectures', None)}) is not a causal LM that "
            "AutoModelForCausalLM can load; compression needs a decoder-only language model"
        )
    try:
        AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{option} {path}: no tokenizer AutoTokenizer can load ({str(exc)[:200]}); save it "
            "beside the weights with tokenizer.save_pretrained(DIR)"
        ) from exc


def read_champion(models_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """The forge champion's manifest, or ``None`` and the reason it cannot be used.

    The contract (trainers/forge/champion.py) is the sibling ``<models_dir>/forge/
    champion.json``; the copy inside the checkpoint directory is read if it is absent.
    """
    directory = champion_dir(models_dir)
    manifest_path = directory.parent / CHAMPION_MANIFEST
    if not manifest_path.is_file():
        manifest_path = directory / CHAMPION_MANIFEST
    if not manifest_path.is_file():
        return None, (
            f"no forge champion at {directory} ({CHAMPION_MANIFEST} absent; the forge phase "
            "writes it — run `harness run --phase forge --phase compression`)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{manifest_path}: not readable JSON ({exc})"
    if not isinstance(manifest, dict):
        return None, f"{manifest_path}: expected a JSON object"
    missing = [f for f in _MANIFEST_FIELDS if f not in manifest]
    if missing:
        return None, f"{manifest_path}: missing field(s) {', '.join(missing)}"
    if not isinstance(manifest["task"], str) or not manifest["task"]:
        return None, f"{manifest_path}: field 'task'={manifest['task']!r} must be a task name/path"
    try:
        check_checkpoint(directory, option="forge champion")
    except InputError as exc:
        return None, str(exc)
    return manifest, f"forge champion at {directory}"


def task_spec(raw: str | None, *, base: Path | None = None) -> str:
    """``arithmetic[:levels]`` or a JSONL path (relative paths resolved against ``base``)."""
    if raw is None or raw.startswith("arithmetic"):
        return raw or "arithmetic"
    path = Path(raw.removeprefix("jsonl:")).expanduser()
    if not path.is_absolute() and base is not None and (base / path).is_file():
        path = base / path
    if not path.is_file():
        raise DataValidationError(
            f"--compression-task {raw!r}: no such file; pass a JSONL file with 'question' and "
            "'answer' per line, or 'arithmetic' for the synthetic arithmetic task"
        )
    return str(path)


def default_input(
    models_dir: Path, cache_dir: Path, *, note: str = ""
) -> tuple[CompressionInput, QATask | None]:
    """The forge champion if usable (module doc), else the embedded model, with the reason."""
    from trainers.bitnet.pipeline import fp_dev_accuracy
    from trainers.bitnet.qa_task import QAFormat, load_task
    from trainers.forge.champion import question_set

    manifest, why = read_champion(models_dir)
    if manifest is None:
        return CompressionInput("embedded", why + note), None
    directory = champion_dir(models_dir)
    overlap: dict[str, Any] = {}
    try:
        seen = question_set(directory, manifest)
        fmt = QAFormat(
            prompt_template=str(manifest.get("prompt_template", QAFormat.prompt_template)),
            answer_template=str(manifest.get("answer_template", QAFormat.answer_template)),
            encoding=str(manifest.get("encoding", "text")),
        )
        task = load_task(task_spec(str(manifest["task"]), base=directory), fmt=fmt, exclude=seen)
        overlap = _overlap_record(seen, manifest, task.excluded)
        acc = fp_dev_accuracy(directory, task, cache_dir=cache_dir)
    except DataValidationError as exc:
        return CompressionInput(
            "embedded", f"forge champion at {directory}: its task cannot be used ({exc})" + note,
            path=str(directory), manifest=manifest, overlap=overlap,
        ), None  # fmt: skip
    if acc < MIN_FP_ACCURACY:
        return CompressionInput(
            "embedded",
            f"forge champion at {directory}: full-precision dev accuracy {acc:.3f} < "
            f"{MIN_FP_ACCURACY} on its task {manifest['task']!r} — a retention ratio would "
            "be meaningless, so the embedded tiny model is compressed instead" + note,
            path=str(directory),
            task=task.name,
            manifest=manifest,
            fp_dev_accuracy=acc,
            overlap=overlap,
        ), None
    reason = f"forge champion at {directory}: dev accuracy {acc:.3f} ≥ {MIN_FP_ACCURACY}" + note
    return CompressionInput(
        "forge", reason, str(directory), task.name, manifest, acc, overlap
    ), task


def _overlap_record(
    seen: frozenset[str] | None, manifest: dict[str, Any], dropped: dict[str, int]
) -> dict[str, Any]:
    """What the evidence says about training-question overlap with the task."""
    if seen is None:
        return {
            "checked": False,
            "warning": "the forge champion has no training-question file (written before it "
            "existed): dev/test items may include questions it trained on; re-run the forge "
            "phase to write it",
        }
    spec = manifest["train_questions"]
    return {
        "checked": True,
        "dropped": dropped,
        "from": f"forge champion's {'+'.join(spec.get('splits', []))} questions "
        f"({len(seen)} digests, {spec.get('file')} sha256 {spec['sha256'][:16]}…)",
    }
