"""Forge phase: turn a :class:`~trainers.forge.pipeline.ForgeRun` into Outcomes per gate.

Training, evolution and judging happen once in :mod:`trainers.forge.pipeline`; this
module maps its record to what each gate of ``gates/forge.yaml`` decides on:

* ``cognate_accuracy`` — per held-out item, 1 if the subject's greedy answer is exact;
* ``cognate_diversity`` — per held-out item, 1 if two models give different answers
  (:func:`harness.evaluators.diversity.disagreement_items`);
* ``fitness_improvement`` — per held-out item correctness of the champion, paired by
  item with the best parent's (the parent with the highest **held-out** accuracy: the
  most demanding baseline);
* ``population_diversity``, ``combos_used``, ``evolution_time`` — one exact value each;
* ``cognate_training_time`` / ``cognate_storage`` — one exact value per Phase 1 output (the
  stem and each specialist; plus a user data file), which the gate sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.evaluators.diversity import (
    disagreement_items,
    linear_cka,
    mean_pairwise_disagreement,
)
from harness.outcomes import Outcome
from trainers.forge.pipeline import ForgeRun

__all__ = [
    "accuracy_outcomes",
    "best_parent",
    "cka",
    "cognate_markdown",
    "cognate_outputs",
    "cognate_storage_outcomes",
    "cognate_training_outcomes",
    "combos_outcome",
    "complementarity",
    "disagreement_outcomes",
    "diversity_outcome",
    "evolution_markdown",
    "pairs",
    "parents",
    "time_outcome",
]


def cka(run: ForgeRun, a: str, b: str) -> float:
    """Linear CKA of subjects ``a`` and ``b``'s answer-position hidden states on held-out items.

    Descriptive (no sampling distribution claimed); ``nan`` when the run kept no features.
    """
    path = run.paths.get("features")
    if not path or not Path(path).is_file():
        return float("nan")
    with np.load(path) as feats:
        return linear_cka(feats[a], feats[b])


def parents(run: ForgeRun) -> list[str]:
    """The specialists' names, in config order."""
    return [str(s["name"]) for s in run.config["specialists"]]


def pairs(run: ForgeRun) -> list[tuple[str, str]]:
    """Every pair of specialists."""
    return list(combinations(parents(run), 2))


def best_parent(run: ForgeRun) -> str:
    """The specialist with the highest held-out accuracy (ties: config order)."""
    return max(parents(run), key=run.accuracy)


def accuracy_outcomes(run: ForgeRun, subject: str) -> list[Outcome]:
    """Per held-out item: 1 if ``subject``'s greedy answer equals the target."""
    if subject not in run.answers:
        raise HarnessError(
            f"forge run record: unknown subject {subject!r}; the run answered for "
            f"{', '.join(run.answers)} (pick one of those, or re-run the forge phase with "
            "that specialist in ForgeConfig.specialists)"
        )
    return [
        Outcome(item_id=i, value=float(a == t), raw={"answer": a, "target": t, "level": lv})
        for i, a, t, lv in zip(
            run.item_ids, run.answers[subject], run.targets, run.levels, strict=True
        )
    ]


def disagreement_outcomes(run: ForgeRun, a: str, b: str) -> list[Outcome]:
    """Per held-out item: 1 if subjects ``a`` and ``b`` answer differently."""
    diff = disagreement_items(run.answers[a], run.answers[b])
    return [
        Outcome(item_id=i, value=float(d), raw={a: x, b: y})
        for i, d, x, y in zip(run.item_ids, diff, run.answers[a], run.answers[b], strict=True)
    ]


def complementarity(run: ForgeRun, a: str, b: str) -> float:
    """Share of held-out items exactly one of ``a``/``b`` gets right (room a merge can use)."""
    ca, cb = run.correct(a), run.correct(b)
    return sum(x != y for x, y in zip(ca, cb, strict=True)) / len(ca)


def diversity_outcome(run: ForgeRun) -> list[Outcome]:
    """Final-generation population diversity (mean pairwise task-vector cosine distance)."""
    return [
        Outcome(
            item_id="final_population",
            value=run.final_population_diversity,
            raw={"members": run.final_population},
        )
    ]


def combos_outcome(run: ForgeRun, *, accepted: dict[str, int] | None = None) -> list[Outcome]:
    """Number of the 8 combos used by at least one merge that passed degenerate detection."""
    acc = run.accepted_combos if accepted is None else accepted
    return [
        Outcome(
            item_id="distinct_combos",
            value=float(sum(1 for v in acc.values() if v > 0)),
            raw={"accepted": acc, "attempted": run.combo_counts},
        )
    ]


def time_outcome(run: ForgeRun) -> list[Outcome]:
    """Wall-clock seconds of the evolution call (CPU seconds in ``raw``)."""
    return [
        Outcome(
            item_id="evolution_wall_seconds",
            value=run.evolution_seconds["wall"],
            raw=dict(run.evolution_seconds),
        )
    ]


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _by_level(run: ForgeRun, subject: str) -> list[str]:
    ok = run.correct(subject)
    out = []
    for lv in sorted(set(run.levels)):
        hits = [c for c, x in zip(ok, run.levels, strict=True) if x == lv]
        out.append(f"{sum(hits) / len(hits):.3f}")
    return out


def cognate_markdown(run: ForgeRun, *, figures: Sequence[str] = ()) -> str:
    """Per-model accuracy by level, pairwise disagreement / complementarity / CKA."""
    levels = sorted(set(run.levels))
    subjects = ["init", "stem", *parents(run), "champion"]
    lines = [
        _row(["model", "held-out acc", "selection acc", *(f"level {lv}" for lv in levels)]),
        _row(["---"] * (3 + len(levels))),
    ]
    for s in subjects:
        lines.append(
            _row([s, f"{run.accuracy(s):.3f}", f"{run.selection_accuracy[s]:.3f}",
                  *_by_level(run, s)])
        )  # fmt: skip
    lines += ["", _row(["pair", "answer disagreement", "one right, one wrong", "linear CKA"])]
    lines.append(_row(["---"] * 4))
    for a, b in pairs(run):
        dis = mean_pairwise_disagreement([run.answers[a], run.answers[b]])
        lines.append(_row([f"{a} / {b}", f"{dis:.3f}", f"{complementarity(run, a, b):.3f}",
                           f"{cka(run, a, b):.3f}"]))  # fmt: skip
    lines += ["", *(f"![{f}]({f})" for f in figures)]
    return "\n".join(lines)


def evolution_markdown(run: ForgeRun, *, figures: Sequence[str] = ()) -> str:
    """Generations, fitness at start/end, fallbacks, injections, combos, time."""
    h = run.history
    first, last = h[0], h[-1]
    extra: dict[str, Any] = {
        "generations": len(h),
        "best selection fitness (gen 0 → last)": f"{first['best']:.3f} → {last['best']:.3f}",
        "mean selection fitness (gen 0 → last)": f"{first['mean']:.3f} → {last['mean']:.3f}",
        "final population diversity": f"{run.final_population_diversity:.3f}",
        "degenerate fallbacks": sum(int(x["fallbacks"]) for x in h),
        "diversity injections": sum(int(x["injections"]) for x in h),
        "fitness evaluations": run.fitness_calls,
        "evolution wall / CPU s": (
            f"{run.evolution_seconds['wall']:.1f} / {run.evolution_seconds['cpu']:.1f}"
        ),
        "champion": f"{run.champion_id} ({run.lineage[run.champion_id][1]})",
    }
    lines = [_row(["quantity", "value"]), _row(["---", "---"])]
    lines += [_row([k, v]) for k, v in extra.items()]
    lines += ["", _row(["combo", "merges", "passed detection"]), _row(["---"] * 3)]
    for name, n in run.combo_counts.items():
        lines.append(_row([name, n, run.accepted_combos.get(name, 0)]))
    lines += ["", *(f"![{f}]({f})" for f in figures)]
    return "\n".join(lines)


def cognate_outputs(run: ForgeRun) -> list[str]:
    """The Phase 1 models: the shared stem, then each specialist (config order)."""
    return ["stem", *parents(run)]


def cognate_training_outcomes(run: ForgeRun) -> list[Outcome]:
    """Wall seconds of each Cognate training (stem, then every specialist), summed by the gate.

    Read from the run record's ``seconds`` (monotonic clock around each training); a record
    without a model's time is a harness error naming it, never a silent 0.
    """
    missing = [n for n in cognate_outputs(run) if n not in run.seconds]
    if missing:
        raise HarnessError(
            f"forge run record: no training seconds for {', '.join(missing)} (has "
            f"{', '.join(run.seconds) or 'none'}); re-run the forge phase with --no-cache"
        )
    return [
        Outcome(item_id=f"train_{n}", value=float(run.seconds[n]), raw={"model": n})
        for n in cognate_outputs(run)
    ]


def _bytes_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cognate_storage_outcomes(run: ForgeRun) -> tuple[list[Outcome], list[str]]:
    """Bytes on disk of each Phase 1 output, and the outputs not on disk any more.

    Outputs: the stem and specialist checkpoint directories the run saved, plus the user's
    data file when the run read one (the generated task is rebuilt from seeds, not stored).
    The caller makes no claim when anything is missing: a partial sum would under-count.
    """
    items = [(n, run.paths.get(n, "")) for n in cognate_outputs(run)]
    data = run.config.get("data_path")
    if data:
        items.append(("data", str(data)))
    outcomes, missing = [], []
    for name, path in items:
        if not path or not Path(path).exists():
            missing.append(f"{name} ({path or 'no path recorded'})")
            continue
        outcomes.append(
            Outcome(item_id=f"bytes_{name}", value=float(_bytes_on_disk(Path(path))),
                    raw={"path": path})
        )  # fmt: skip
    return outcomes, missing
