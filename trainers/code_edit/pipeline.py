"""The code-edit training pipeline: Stage 0 SFT, Stage 1 SFT, then SRL (GRPO) from Stage 1.

SRL is a claim about a training *recipe* (SFT + SRL beats SFT alone), so it is
run on ``srl_seeds`` GRPO seeds (``srl.seed``, ``srl.seed + 1``, …) from the
same Stage 1 checkpoint; the gates decide on the worst seed.  Beside it, the
data-matched ablation arm ``continued_sft``: Stage 1 continued with plain SFT
on the *same* verified SRL steps, so "SRL beats SFT" can be told apart from
"SRL saw more (other) data" (docs/code_edit.md).

One YAML-loadable config (:class:`CodeEditPipelineConfig`) names every knob,
so a run is reproducible from the file; no path is hard-coded (checkpoints go
under ``<models_dir>/code_edit``, the data root and the base model are
options).  Each stage is cached by its own cache key, so a rerun with the same
code, libraries, config, data and seed trains nothing.

Defaults are the embedded run measured in docs/code_edit.md: the ``tiny-code``
model (a 4-layer Llama trained on HumanEval-free standard-library code) as
base, LoRA on every linear layer, sized to stay within a few CPU minutes.

Command line (outside pytest)::

    python -m trainers.code_edit.teacher --root DIR --out raw.jsonl
    harness data code-edit filter raw.jsonl --root DIR --out SRL_DIR
    python -m trainers.code_edit.pipeline --config my.yaml --data DIR --srl-data SRL_DIR \
        --base MODEL_DIR
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.data.code_edit.action import parse_action
from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.trajectory import SRLStep, load_srl_dataset
from harness.errors import TrainerError
from trainers.base import Artifact
from trainers.code_edit.sft import CodeEditSFTConfig, CodeEditSFTTrainer, code_edit_models_dir
from trainers.code_edit.srl import SRLConfig, SRLTrainer

__all__ = [
    "CodeEditPipelineConfig",
    "PipelineArtifacts",
    "load_pipeline_config",
    "srl_steps_as_records",
    "train_pipeline",
]


#: Stage 1 (instruction + pre-code → ast-grep action) SFT; the continued-SFT ablation arm
#: is derived from it, so the arm keeps Stage 1's recipe if the recipe changes.
_STAGE1 = CodeEditSFTConfig(
    tag="stage1",
    target=Target.ACTION,
    lora_r=16,
    lora_alpha=32.0,
    learning_rate=1e-2,
    max_steps=150,
    batch_size=4,
    max_length=512,
)


class CodeEditPipelineConfig(BaseModel):
    """Every stage's config; ``eval_max_tokens_*`` cap held-out generations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage0: CodeEditSFTConfig = CodeEditSFTConfig(
        tag="stage0",
        target=Target.POST_CODE,
        lora_r=16,
        lora_alpha=32.0,
        learning_rate=1e-2,
        max_steps=60,
        batch_size=4,
        max_length=512,
    )
    stage1: CodeEditSFTConfig = _STAGE1
    srl: SRLConfig = SRLConfig()
    #: GRPO runs of the SRL recipe, seeds ``srl.seed`` … ``srl.seed + srl_seeds − 1``, each
    #: from the same Stage 1 checkpoint and cached by its own key (seed 0's key is the
    #: single-run key, so a cached single run is reused); the SRL gates take the worst seed
    srl_seeds: int = Field(default=3, ge=1, le=32)
    #: data-matched ablation arm: Stage 1 continued with plain SFT on the same verified SRL
    #: steps.  Stage 1's SFT recipe (LoRA r 16 / α 32, lr 1e-2, cosine, warmup 5, 512
    #: tokens), GRPO's step count (30) and its sequences per step (8 completions) as the
    #: batch: 240 target sequences, 4× the 60 distinct prompts GRPO samples (30 × 2), from
    #: the same verified steps.  Fixed a priori, not tuned on any split.
    continued_sft: CodeEditSFTConfig = _STAGE1.model_copy(
        update={"tag": "stage1_cont", "max_steps": 30, "batch_size": 8}
    )
    eval_max_tokens_post_code: int = 256
    eval_max_tokens_action: int = 96


def load_pipeline_config(path: Path | str) -> CodeEditPipelineConfig:
    """Read a YAML config; errors name the file, the field and the value."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainerError(f"{p}: cannot read the code-edit pipeline config ({exc})") from exc
    try:
        return CodeEditPipelineConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise TrainerError(
            f"{p}: field '{field}' = {err.get('input')!r}: {err['msg']} "
            "(see trainers.code_edit.pipeline.CodeEditPipelineConfig)"
        ) from exc


@dataclass(frozen=True)
class PipelineArtifacts:
    """The trained checkpoints (each ``artifact.path / "model"`` loads in transformers).

    ``srl_runs[i]`` is the GRPO run at seed ``srl_seeds[i]``; ``srl`` is the first (the
    configured ``srl.seed``).  ``continued_sft`` is the data-matched ablation arm.
    """

    base: Path
    stage0: Artifact
    stage1: Artifact
    srl_runs: tuple[Artifact, ...]
    srl_seeds: tuple[int, ...]
    continued_sft: Artifact

    @property
    def srl(self) -> Artifact:
        return self.srl_runs[0]


def srl_steps_as_records(
    steps: Sequence[SRLStep], records: Sequence[NormalizedRecord]
) -> list[NormalizedRecord]:
    """The verified SRL steps as Stage 1 SFT rows: each step's train record, with the
    teacher's verified action as the target (the ablation arm learns exactly what SRL is
    rewarded towards).  A step whose record is not in the train split is an error."""
    train = {r.id: r for r in records if r.split is Split.TRAIN}
    out: list[NormalizedRecord] = []
    for s in steps:
        rec = train.get(s.record_id)
        if rec is None:
            raise TrainerError(
                f"SRL step {s.id}: record {s.record_id!r} is not a train-split record of this "
                "data root; filter the teacher trajectories of the same data"
            )
        action = parse_action(s.action).model_dump(mode="json", exclude_none=True)
        fields = {**rec.model_dump(mode="json"), "id": s.id, "action": action}
        out.append(NormalizedRecord.model_validate(fields))
    return out


def train_pipeline(
    records: Sequence[NormalizedRecord],
    *,
    base_dir: Path,
    srl_data: Path,
    config: CodeEditPipelineConfig | None = None,
    models_dir: Path | None = None,
    progress: Callable[[str], None] = print,
) -> PipelineArtifacts:
    """Train (or reuse) Stage 0 and Stage 1 on the train split of ``records``, then SRL
    from Stage 1 on the train split of the filtered SRL dataset under ``srl_data``."""
    cfg = config or CodeEditPipelineConfig()
    root = models_dir or code_edit_models_dir()
    train = [r for r in records if r.split is Split.TRAIN]
    if not train:
        raise TrainerError("code-edit pipeline: no train-split records; build or ingest data")
    stage0 = CodeEditSFTTrainer(cfg.stage0, models_dir=root, progress=progress).train(
        train, base_dir=base_dir
    )
    stage1 = CodeEditSFTTrainer(cfg.stage1, models_dir=root, progress=progress).train(
        train, base_dir=base_dir
    )
    steps = load_srl_dataset(srl_data, Split.TRAIN)
    stage1_model = stage1.path / "model"
    seeds = tuple(cfg.srl.seed + i for i in range(cfg.srl_seeds))
    runs = tuple(
        SRLTrainer(
            cfg.srl.model_copy(update={"seed": s}), models_dir=root, progress=progress
        ).train(steps, base_dir=stage1_model)
        for s in seeds
    )
    continued = CodeEditSFTTrainer(cfg.continued_sft, models_dir=root, progress=progress).train(
        srl_steps_as_records(steps.steps, records), base_dir=stage1_model
    )
    return PipelineArtifacts(
        base=base_dir,
        stage0=stage0,
        stage1=stage1,
        srl_runs=runs,
        srl_seeds=seeds,
        continued_sft=continued,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from harness.data.code_edit.store import read_processed

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=None, help="pipeline YAML (default: embedded)")
    ap.add_argument("--data", type=Path, required=True, help="processed data root (train/dev/test)")
    ap.add_argument(
        "--srl-data",
        type=Path,
        required=True,
        help="clean SRL dataset directory (harness data code-edit filter --out)",
    )
    ap.add_argument("--base", type=Path, required=True, help="base model checkpoint directory")
    ap.add_argument("--models-dir", type=Path, default=None, help="default <models_dir>/code_edit")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config) if args.config else CodeEditPipelineConfig()
    out = train_pipeline(
        read_processed(root=args.data),
        base_dir=args.base,
        srl_data=args.srl_data,
        config=cfg,
        models_dir=args.models_dir,
    )
    named = [("stage0", out.stage0), ("stage1", out.stage1)]
    named += [(f"srl seed {s}", a) for s, a in zip(out.srl_seeds, out.srl_runs, strict=True)]
    named.append(("continued_sft", out.continued_sft))
    for name, art in named:
        print(f"{name}: {art.path / 'model'} (cached={art.cached})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
