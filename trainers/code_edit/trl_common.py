"""The TRL/PEFT calls behind the code-edit trainers (heavy imports stay here, lazily).

:func:`run_sft` runs ``trl.SFTTrainer`` with a PEFT ``LoraConfig`` (or a full
fine-tune when ``lora_r = 0``) on CPU-friendly settings and writes, into the
directory it is given, ``model/`` (merged, loadable by ``AutoModelForCausalLM``),
``adapter/`` (the LoRA weights alone), ``log_history.json`` and
``contamination.json``.  :class:`CachedStage` is the constructor and cache-reuse
logic both stage trainers share: reuse the artifact stored under the stage's
cache key, or build it into a fresh directory published atomically (one
``FileLock`` per entry, so two workers never train the same stage at once).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from filelock import FileLock

from harness.atomic import atomic_dir, atomic_write_json
from harness.backends.hf import quiet_progress
from harness.cachekey import (
    CacheKey,
    cache_key,
    note_cache_use,
    note_training_run,
    refresh_requested,
    run_stamp,
)
from harness.data.code_edit.prompts import Target, messages
from harness.data.code_edit.schema import NormalizedRecord
from harness.errors import TrainerError
from harness.settings import get_settings
from trainers.base import Artifact, config_digest, directory_digest
from trainers.tracking import RunTracker

if TYPE_CHECKING:
    from pydantic import BaseModel

    from trainers.code_edit.sft import CodeEditSFTConfig

__all__ = [
    "ARTIFACT_FILE",
    "CachedStage",
    "ChatRenderer",
    "check_humaneval_overlap",
    "code_edit_models_dir",
    "lora_config",
    "quiet_training",
    "run_sft",
    "stage_cache_key",
    "tokenized_rows",
    "tracker_callback",
]


ARTIFACT_FILE = "artifact.json"
C = TypeVar("C")

#: libraries whose versions shape a trained code-edit stage (SFT and SRL alike)
PRODUCER_LIBRARIES: tuple[str, ...] = (
    "torch",
    "transformers",
    "tokenizers",
    "trl",
    "peft",
    "datasets",
    "accelerate",
)


def stage_cache_key(
    kind: str,
    config: BaseModel,
    *,
    tag: str,
    seed: int,
    modules: Sequence[str],
    base_digest: str,
    data_digest: str,
) -> CacheKey:
    """One key recipe for every trained stage: the producing ``modules``' code, the
    library versions, the stage's whole config, the base checkpoint + training rows,
    and the seed (why one place: two stages keyed differently would reuse differently)."""
    return cache_key(
        f"code-edit-{kind}/{tag}",
        modules=modules,
        libraries=PRODUCER_LIBRARIES,
        config=config.model_dump(mode="json"),
        data=config_digest({"base": base_digest, "rows": data_digest}),
        seed=seed,
    )


def code_edit_models_dir() -> Path:
    """``<models_dir>/code_edit`` (``HARNESS_MODELS_DIR``; docs/settings.md)."""
    return get_settings().models_dir / "code_edit"


class CachedStage(Generic[C]):
    """Constructor and cache reuse shared by the SFT and SRL stage trainers.

    A subclass sets ``kind`` (the label prefix, ``sft``/``srl``), ``log_name`` (the
    artifact's per-step log) and ``note_untracked`` (whether a reused artifact with
    no W&B run record is still noted as a training run: SRL notes every reuse, SFT
    only tracked ones).
    """

    kind: ClassVar[str]
    log_name: ClassVar[str]
    note_untracked: ClassVar[bool]

    def __init__(
        self,
        config: C,
        *,
        models_dir: Path | None = None,
        progress: Callable[[str], None] = print,
        refresh: bool = False,
    ) -> None:
        self.config = config
        self.models_dir = Path(models_dir) if models_dir is not None else code_edit_models_dir()
        self.progress = progress
        self.refresh = refresh

    def _reuse_or_build(
        self, key: CacheKey, tag: str, build: Callable[[Path], dict[str, Any]]
    ) -> Artifact:
        """The artifact under ``key``: reused when stored by this key and not to be
        rebuilt (``refresh`` here, ``--no-cache`` once per run), else ``build(tmp)``
        fills a fresh directory (``model/`` at least) and returns its metrics, and the
        directory is published atomically with ``artifact.json``."""
        label = f"{self.kind}/{tag}"
        note_cache_use(key, mode="refresh" if self.refresh else "use", label=label)
        out = self.models_dir / f"{tag}-{key.key[:12]}"
        with FileLock(str(out) + ".lock"):
            cached = self._read_cached(out, key.key)
            # --no-cache (settings) rebuilds an entry once per run, like ``refresh``
            stale = cached is None or refresh_requested(cached.metrics.get("built_by_run"))
            if cached is not None and not self.refresh and not stale:
                if cached.metrics.get("wandb") or self.note_untracked:
                    note_training_run(label, cached.metrics.get("wandb", {}))
                return cached
            with atomic_dir(out) as tmp:
                metrics = build(tmp)
                metrics["cache"] = key.record()
                metrics["built_by_run"] = run_stamp()
                digest = directory_digest(tmp / "model")
                atomic_write_json(
                    tmp / ARTIFACT_FILE, {"key": key.key, "digest": digest, "metrics": metrics}
                )
        note_training_run(label, metrics.get("wandb", {}))
        return Artifact(out, digest, key.key, out / self.log_name, metrics)

    def _read_cached(self, out: Path, key: str) -> Artifact | None:
        marker = out / ARTIFACT_FILE
        if not marker.is_file():
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        metrics = data.get("metrics", {})
        return Artifact(out, data["digest"], key, out / self.log_name, metrics, True)


@contextmanager
def quiet_training() -> Iterator[None]:
    """No ``datasets`` progress bars, no TRL deprecation chatter (ours to read, not to fix)."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="trl")
            warnings.filterwarnings("ignore", category=UserWarning, module="peft")
            yield
    finally:
        if was:
            datasets.enable_progress_bars()


def check_humaneval_overlap(texts: Sequence[str], out: Path) -> dict[str, Any]:
    """13-gram HumanEval overlap of the training texts; writes the report, raises on a hit."""
    from harness.data.contamination import bench_items, check_contamination

    report = check_contamination(list(texts), bench_items("humaneval"), bench="humaneval")
    atomic_write_json(out, report.model_dump(mode="json"), indent=1)
    if report.contaminated:
        ids = ", ".join(i.item_id for i in report.contaminated[:5])
        raise TrainerError(
            f"code-edit training texts overlap HumanEval (the codegen benchmark) on "
            f"{len(report.contaminated)} task(s) ({ids}); drop those rows (harness data "
            "contamination) before training"
        )
    return report.summary()


def lora_config(r: int, alpha: float, dropout: float, modules: Sequence[str]) -> Any:
    """A causal-LM PEFT ``LoraConfig``."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def tracker_callback(tracker: RunTracker, progress: Callable[[str], None], label: str) -> Any:
    """A ``TrainerCallback`` that sends every log dict to W&B and a line to ``progress``."""
    from transformers import TrainerCallback

    class _Log(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not logs:
                return
            scalars = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
            tracker.log(int(state.global_step), scalars)
            if "loss" in logs or "reward" in logs:
                what = "reward" if "reward" in logs else "loss"
                progress(
                    f"  {label} step {state.global_step:>4}/{state.max_steps}  "
                    f"{what} {float(logs[what]):.4f}  ({time.perf_counter() - self.t0:.0f}s)"
                )

    return _Log()


class ChatRenderer:
    """Renders conversations through the tokenizer's chat template, fast.

    The template is rendered once per role layout with sentinel contents, then
    the real contents are substituted: a template only concatenates contents
    and markup, so the text is the same as a direct render (checked against one
    real ``apply_chat_template`` call per layout; a mismatch raises).  Per-row
    jinja rendering cost ~50 ms a row on the loaded 2-core box, more than the
    Stage 1 training itself.
    """

    _SENTINEL = "\x00CONTENT{}\x00"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._layouts: dict[tuple[tuple[str, ...], bool], str] = {}

    def render(self, turns: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
        roles = tuple(t["role"] for t in turns)
        key = (roles, generation_prompt)
        if key not in self._layouts:
            skeleton = [
                {"role": r, "content": self._SENTINEL.format(i)} for i, r in enumerate(roles)
            ]
            self._layouts[key] = self._template(skeleton, generation_prompt)
            direct = self._template(list(turns), generation_prompt)
            if self._fill(self._layouts[key], turns) != direct:
                raise TrainerError(
                    "chat template does not render contents verbatim (sentinel check failed); "
                    "this template cannot use the fast renderer"
                )
        return self._fill(self._layouts[key], turns)

    def _template(self, turns: list[dict[str, str]], generation_prompt: bool) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                turns, tokenize=False, add_generation_prompt=generation_prompt
            )
        )

    def _fill(self, layout: str, turns: Sequence[dict[str, str]]) -> str:
        out = layout
        for i, t in enumerate(turns):
            out = out.replace(self._SENTINEL.format(i), t["content"], 1)
        return out


def tokenized_rows(
    records: Sequence[NormalizedRecord], target: Target, tokenizer: Any, max_length: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """``input_ids`` + ``labels`` (prompt tokens −100) per row that fits ``max_length``.

    Loss on the assistant turn only (its closing end-of-turn token included, so
    the model learns to stop); rows longer than ``max_length`` are dropped and
    their ids returned — a truncated target would teach stopping mid-function.
    """
    renderer = ChatRenderer(tokenizer)
    rows = [messages(r, target) for r in records]
    prompts = [renderer.render(m["prompt"], generation_prompt=True) for m in rows]
    fulls = [renderer.render(m["prompt"] + m["completion"], generation_prompt=False) for m in rows]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(fulls, add_special_tokens=False)["input_ids"]
    keep: list[dict[str, Any]] = []
    dropped: list[str] = []
    for r, p, f in zip(records, p_ids, f_ids, strict=True):
        if len(f) > max_length:
            dropped.append(r.id)
            continue
        if f[: len(p)] != p:
            raise TrainerError(f"record {r.id}: the prompt's tokens are not a prefix of the row's")
        keep.append({"input_ids": f, "labels": [-100] * len(p) + f[len(p) :]})
    return keep, dropped


def run_sft(
    cfg: CodeEditSFTConfig,
    records: Sequence[NormalizedRecord],
    *,
    base_dir: Path,
    out: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Train; write model/, adapter/, logs into ``out`` (a fresh directory); the metrics."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    rows, too_long = tokenized_rows(records, cfg.target, tokenizer, cfg.max_length)
    if not rows:
        raise TrainerError(
            f"SFT '{cfg.tag}': every row is longer than max_length={cfg.max_length} tokens; "
            "raise max_length"
        )
    texts = [r.pre_code + "\n" + r.post_code for r in records]
    contamination = check_humaneval_overlap(texts, out / "contamination.json")
    torch.manual_seed(cfg.seed)
    with quiet_progress():
        model: Any = AutoModelForCausalLM.from_pretrained(base_dir)
    knobs = {**cfg.model_dump(mode="json"), "rows": len(rows), "dropped_too_long": len(too_long)}
    tracker = RunTracker(name=f"code-edit-{cfg.tag}", config=knobs, group="code_edit")
    progress(
        f"code-edit SFT '{cfg.tag}' ({cfg.target}): {len(rows)} rows "
        f"({len(too_long)} over {cfg.max_length} tokens dropped), {cfg.max_steps} steps, "
        f"LoRA r={cfg.lora_r}"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with quiet_training(), tempfile.TemporaryDirectory(prefix="sft-run-") as run_dir:
            args = SFTConfig(
                output_dir=run_dir,
                max_steps=cfg.max_steps,
                per_device_train_batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                lr_scheduler_type="cosine",
                warmup_steps=cfg.warmup_steps,
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                use_cpu=not torch.cuda.is_available(),
                seed=cfg.seed,
                data_seed=cfg.seed,
                max_length=cfg.max_length,
                packing=False,
                disable_tqdm=True,
                dataloader_num_workers=0,
                bf16=False,
                fp16=False,
                gradient_checkpointing=False,
            )
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=tokenizer,
                peft_config=(
                    lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)
                    if cfg.lora_r
                    else None
                ),
                callbacks=[tracker_callback(tracker, progress, f"sft/{cfg.tag}")],
            )
            trainer.remove_callback(PrinterCallback)
            result = trainer.train()
            history = list(trainer.state.log_history)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tracker.summary({"train_loss": float(result.training_loss), "wall_s": wall})
    except BaseException:
        tracker.finish(failed=True)
        raise
    tracker.finish()
    _save(trainer.model, tokenizer, out, lora=bool(cfg.lora_r))
    atomic_write_json(out / "log_history.json", history)
    return {
        "tag": cfg.tag,
        "target": cfg.target.value,
        "rows": len(rows),
        "dropped_too_long": too_long,
        "train_loss": float(result.training_loss),
        "loss_curve": [h["loss"] for h in history if "loss" in h],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "contamination": contamination,
        "wandb": tracker.record(),
    }


def _save(model: Any, tokenizer: Any, out: Path, *, lora: bool) -> None:
    """``adapter/`` (LoRA only) and ``model/`` (merged: a plain transformers checkpoint)."""
    with quiet_progress():
        if lora:
            model.save_pretrained(out / "adapter")
            model = model.merge_and_unload()
        model.eval()
        model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
