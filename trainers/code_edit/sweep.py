"""Choose the SRL (GRPO) knobs on the dev split: rollout temperature × learning rate.

    python -m trainers.code_edit.sweep --data DIR --srl-data SRL_DIR --base MODEL_DIR \
        [--temperature 0.2,0.3,0.5] [--learning-rate 2e-4,5e-4,1e-3] \
        [--out docs/data/code_edit_sweep_dev.json]
    python -m trainers.code_edit.sweep --render docs/data/code_edit_sweep_dev.json

Trains (or reuses, by cache key) the pipeline's Stage 1 model on the train split,
then one SRL run per grid cell from it on the filtered SRL dataset's **train**
split (the same data and stage the phase trains), and scores each run on the
SRL dataset's **dev** split: the dev records' verified teacher steps.  The test
split is never read here; the phase judges it once per run.

Selection metric (decided before looking): the **mean dev reward_srl** of the
model's greedy action for each dev step, against that step's verified action.
Why this and not dev action success: it is the quantity GRPO maximises, so it
measures the knobs' effect on the thing they tune; it is graded (an almost-right
rule scores near 1, an unparsable one −0.2), where success is 0/1 and a small
model scores 0 of every dev codemod, so success cannot rank the cells; and it
needs no sandbox, which a trainer may not reach (the validator is an evaluator).
Dev exact-action accuracy and parse rate are recorded beside it.

Decision rule: the best cell by the metric replaces the current default only
when its per-step paired gain over the default cell is significant (one-sided
paired t-test, ``scipy.stats.ttest_rel``, p < 0.05); otherwise the default
stays.  Picking the best of several cells first biases that test upwards
(winner's curse), so a "keep" is the informative outcome and a "change" is a
hint to confirm with more seeds.  One seed per cell.

Resumable: every finished cell is written to ``--out`` at once (atomically)
under a context digest — the Stage 1 checkpoint, both SRL dataset digests, the
fixed knobs and this module's code; a restart reuses the rows of the same
context and computes only the missing cells.  The SRL checkpoints themselves
are cached by their own keys too.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_json
from harness.data.code_edit.action import ActionError, parse_action
from harness.data.code_edit.prompts import Target, prompt_messages
from harness.data.code_edit.schema import Split
from harness.data.code_edit.trajectory import SRLDataset, SRLStep, load_srl_dataset
from harness.errors import TrainerError
from trainers.base import config_digest
from trainers.code_edit.reward_srl import field_score, reward_srl

__all__ = [
    "METRIC",
    "Cell",
    "dev_scores",
    "grid",
    "main",
    "previous_run",
    "render_markdown",
    "run_sweep",
    "select",
]

METRIC = "dev_reward_mean"
SWEPT = ("temperature", "learning_rate")


@dataclass(frozen=True)
class Cell:
    """One grid point: an id (stable across runs) and the knob values it overrides."""

    id: str
    knobs: dict[str, float]


def grid(temperatures: Sequence[float], learning_rates: Sequence[float]) -> list[Cell]:
    """Every (temperature, lr) pair; ids like ``t0.3-lr0.0005``, in the order given."""
    return [
        Cell(f"t{t:g}-lr{lr:g}", {"temperature": t, "learning_rate": lr})
        for t in temperatures
        for lr in learning_rates
    ]


def previous_run(out: Path, context: dict[str, Any]) -> dict[str, Any]:
    """The earlier sweep document at ``out`` when it ran in the same context, else {}."""
    if not out.is_file():
        return {}
    old: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return old if old.get("context_digest") == config_digest(context) else {}


def _load_rows(out: Path, context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished rows of an earlier run with the same context (none when it differs)."""
    return dict(previous_run(out, context).get("rows", {}))


def run_sweep(
    cells: Sequence[Cell],
    evaluate: Callable[[Cell], dict[str, Any]],
    *,
    out: Path,
    context: dict[str, Any],
    default_id: str,
    extra: dict[str, Any] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate every cell not already in ``out`` for this ``context``; write after each.

    ``evaluate`` returns the cell's row: at least ``METRIC`` and ``per_step`` (the
    metric's per-dev-step values, for the paired decision).  ``extra`` is stored
    beside the rows (e.g. the Stage 1 baseline).
    """
    digest = config_digest(context)
    rows = _load_rows(out, context)
    doc: dict[str, Any] = {
        "metric": METRIC,
        "context": context,
        "context_digest": digest,
        **(extra or {}),
    }
    planned = [c.id for c in cells]
    for cell in cells:
        if cell.id not in rows:
            progress(f"sweep: {cell.id} {cell.knobs}")
            rows[cell.id] = {"knobs": cell.knobs, **evaluate(cell)}
        else:
            progress(f"sweep: {cell.id} reused from {out}")
        done = {c: rows[c] for c in planned if c in rows}
        doc = {**doc, "rows": done, "planned": planned}
        if default_id in done:  # the decision over the cells done so far, kept current
            doc["selection"] = select(done, default_id)
        atomic_write_json(out, doc, indent=1)
    return doc


def select(rows: dict[str, dict[str, Any]], default_id: str) -> dict[str, Any]:
    """The decision rule of the module docstring (best by ``METRIC``; paired t-test)."""
    from scipy.stats import ttest_rel

    if default_id not in rows:
        raise TrainerError(f"sweep: the default cell '{default_id}' is not in the grid")
    best = max(rows, key=lambda k: (rows[k][METRIC], k == default_id))
    out: dict[str, Any] = {"best": best, "default": default_id, "chosen": default_id}
    if best == default_id:
        return {**out, "reason": "the default has the best dev metric"}
    a, b = rows[best]["per_step"], rows[default_id]["per_step"]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    if max(diffs) - min(diffs) <= 1e-9:  # t is undefined on constant differences
        p = 0.0 if diffs[0] > 1e-9 else 1.0
    else:
        p = float(ttest_rel(a, b, alternative="greater").pvalue)
    gain = sum(diffs) / len(diffs)
    out.update({"paired_gain": gain, "p_value": p, "n": len(diffs)})
    if p < 0.05:
        return {**out, "chosen": best, "reason": "paired gain over the default, p < 0.05"}
    return {**out, "reason": "best cell's paired gain is not significant (p >= 0.05): keep"}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render_markdown(doc: dict[str, Any]) -> str:
    """The dev table of docs/code_edit.md, rendered from the sweep JSON."""
    sel = doc.get("selection", {})
    lines = [
        "| cell | temperature | lr | dev reward_srl (mean) | dev exact | dev parse | "
        "train reward (last 5 steps) | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = doc.get("stage1_baseline")
    if base:
        lines.append(
            f"| Stage 1 (no SRL) | – | – | {_fmt(base[METRIC])} | {_fmt(base['dev_exact'])} | "
            f"{_fmt(base['dev_parse'])} | – | – |"
        )
    order = sorted(doc["rows"].items(), key=lambda kv: tuple(kv[1]["knobs"][k] for k in SWEPT))
    for cid, row in order:
        mark = " (default)" if cid == sel.get("default") else ""
        mark += " **chosen**" if cid == sel.get("chosen") and cid != sel.get("default") else ""
        lines.append(
            f"| `{cid}`{mark} | {row['knobs']['temperature']:g} | "
            f"{row['knobs']['learning_rate']:g} | {_fmt(row[METRIC])} | "
            f"{_fmt(row['dev_exact'])} | {_fmt(row['dev_parse'])} | "
            f"{_fmt(row.get('train_reward_last5'))} | {_fmt(row.get('cpu_s'), 0)} |"
        )
    ctx = doc.get("context", {})
    lines += [
        "",
        f"Cells done: {len(doc['rows'])} of {len(doc.get('planned', doc['rows']))}.  "
        f"Dev steps: {ctx.get('dev_steps')} (SRL dataset dev split, digest "
        f"`{str(ctx.get('dev_digest', ''))[:12]}`); train steps: {ctx.get('train_steps')} "
        f"(digest `{str(ctx.get('train_digest', ''))[:12]}`).  Decision: chosen "
        f"`{sel.get('chosen')}` — {sel.get('reason', '')}"
        + (
            f" (best `{sel['best']}`: paired gain {sel['paired_gain']:+.3f}, "
            f"p = {sel['p_value']:.3f}, n = {sel['n']})."
            if "p_value" in sel
            else "."
        ),
    ]
    return "\n".join(lines)


def dev_scores(model_dir: Path, steps: Sequence[SRLStep], *, max_tokens: int) -> dict[str, Any]:
    """Greedy action per dev step; mean reward_srl, exact-action and parse rates."""
    from harness.backends.base import GenerationRequest, Message, SamplingParams
    from harness.backends.hf import HFGenerator

    gen = HFGenerator.from_pretrained(model_dir, name="code-edit-sweep", batch_size=16)
    sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    reqs = [
        GenerationRequest(
            request_id=s.id,
            messages=tuple(Message(**m) for m in prompt_messages(s, Target.ACTION)),
            sampling=sampling,
        )
        for s in steps
    ]
    texts = {g.request_id: g.texts[0] for g in gen.generate(reqs)}
    per_step, exact, parsed = [], 0, 0
    for s in steps:
        text = texts[s.id]
        per_step.append(reward_srl(s.action, text))
        try:
            pred = parse_action(text)
        except ActionError:
            continue
        parsed += 1
        exact += field_score(parse_action(s.action), pred) == 1.0
    n = len(steps)
    return {
        METRIC: sum(per_step) / n,
        "dev_exact": exact / n,
        "dev_parse": parsed / n,
        "per_step": per_step,
    }


def _srl_evaluator(
    stage1_dir: Path,
    train: SRLDataset,
    dev: SRLDataset,
    *,
    models_dir: Path | None,
    max_tokens: int,
    progress: Callable[[str], None],
) -> Callable[[Cell], dict[str, Any]]:
    from trainers.code_edit.pipeline import CodeEditPipelineConfig
    from trainers.code_edit.srl import SRLConfig, SRLTrainer

    fixed = CodeEditPipelineConfig().srl.model_dump(mode="json")

    def evaluate(cell: Cell) -> dict[str, Any]:
        cfg = SRLConfig.model_validate({**fixed, **cell.knobs})
        art = SRLTrainer(cfg, models_dir=models_dir, progress=progress).train(
            train, base_dir=stage1_dir
        )
        rewards = art.metrics["curves"]["reward"]
        tail = rewards[-5:]
        return {
            **dev_scores(art.path / "model", dev.steps, max_tokens=max_tokens),
            "train_reward_last5": sum(tail) / len(tail) if tail else None,
            "cpu_s": art.metrics.get("cpu_s"),
            "wall_s": art.metrics.get("wall_s"),
            "model_dir": str(art.path),
        }

    return evaluate


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    from harness.cachekey import source_digest
    from harness.data.code_edit.store import read_processed
    from trainers.code_edit.pipeline import CodeEditPipelineConfig
    from trainers.code_edit.sft import CodeEditSFTTrainer

    ap = argparse.ArgumentParser(prog="python -m trainers.code_edit.sweep")
    ap.add_argument("--render", type=Path, default=None, help="print the table of a sweep JSON")
    ap.add_argument("--data", type=Path, help="processed code-edit root (train split used)")
    ap.add_argument("--srl-data", type=Path, help="filtered SRL dataset dir (train + dev)")
    ap.add_argument("--base", type=Path, help="base model checkpoint (Stage 1 starts here)")
    ap.add_argument("--models-dir", type=Path, default=None, help="default <models_dir>/code_edit")
    ap.add_argument("--temperature", type=_floats, default=[0.3, 0.2, 0.5])
    ap.add_argument("--learning-rate", type=_floats, default=[5e-4, 2e-4, 1e-3])
    ap.add_argument("--out", type=Path, default=Path("docs/data/code_edit_sweep_dev.json"))
    args = ap.parse_args(argv)
    if args.render:
        print(render_markdown(json.loads(args.render.read_text(encoding="utf-8"))))
        return 0
    if not (args.data and args.srl_data and args.base):
        ap.error("--data, --srl-data and --base are required (or --render FILE)")
    pipe = CodeEditPipelineConfig()
    records = [r for r in read_processed(root=args.data) if r.split is Split.TRAIN]
    stage1 = CodeEditSFTTrainer(pipe.stage1, models_dir=args.models_dir).train(
        records, base_dir=args.base
    )
    stage1_dir = stage1.path / "model"
    train = load_srl_dataset(args.srl_data, Split.TRAIN)
    dev = load_srl_dataset(args.srl_data, Split.DEV)
    if not dev.steps:
        raise TrainerError(f"{args.srl_data}: the SRL dataset has no dev steps to choose on")
    fixed = {k: v for k, v in pipe.srl.model_dump(mode="json").items() if k not in SWEPT}
    context = {
        "stage1_digest": stage1.digest,
        "train_digest": train.digest,
        "train_steps": len(train.steps),
        "dev_digest": dev.digest,
        "dev_steps": len(dev.steps),
        "fixed_knobs": fixed,
        "eval_max_tokens": pipe.eval_max_tokens_action,
        "code": source_digest(["trainers.code_edit.sweep", "trainers.code_edit.srl"]),
    }
    default = {k: float(getattr(pipe.srl, k)) for k in SWEPT}
    default_id = grid([default["temperature"]], [default["learning_rate"]])[0].id
    # the default cell first, then one knob away from it, then the corners
    cells = sorted(
        grid(args.temperature, args.learning_rate),
        key=lambda c: sum(c.knobs[k] != default[k] for k in SWEPT),
    )
    baseline = previous_run(args.out, context).get("stage1_baseline") or dev_scores(
        stage1_dir, dev.steps, max_tokens=pipe.eval_max_tokens_action
    )
    evaluate = _srl_evaluator(
        stage1_dir,
        train,
        dev,
        models_dir=args.models_dir,
        max_tokens=pipe.eval_max_tokens_action,
        progress=print,
    )
    doc = run_sweep(
        cells,
        evaluate,
        out=args.out,
        context=context,
        default_id=default_id,
        extra={"stage1_baseline": baseline},
    )
    print(render_markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
