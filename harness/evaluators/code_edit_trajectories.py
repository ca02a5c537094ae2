"""Filter raw teacher trajectories by sandbox verification into the clean SRL dataset.

Reads the raw :class:`~harness.data.code_edit.trajectory.TeacherStep` JSONL a teacher
wrote, and keeps a step only when the Stage 1 validator
(:func:`~harness.evaluators.code_edit_actions.validate_actions`: the real ast-grep
binary in the Docker sandbox) says its action performs the record's edit — the
result equals ``post_code`` or the record's tests pass.  Everything else is dropped
and counted by why:

* ``bad_row`` — the raw line does not validate as a TeacherStep;
* ``unknown_record`` — no record with that id (or its state differs from the record's);
* ``heldout_split`` — a test-split record: the judged split never feeds training;
* ``no_proposal`` — the teacher emitted nothing;
* ``duplicate`` — the same canonical action for the same record was already kept;
* any validator category (``parse_error``, ``rule_rejected``, ``mismatch``, ``no_change``,
  ``tests_fail``, ``unsafe_rewrite``, ``apply_error``, ``sandbox_error``).

The kept steps are written as :class:`~harness.data.code_edit.trajectory.SRLStep` JSONL
per split (``<out>/train.jsonl``, ``<out>/dev.jsonl``) with ``stats.json`` beside them,
all in one atomic directory publish, so a reader never sees a half-written dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_dir, atomic_write_json, atomic_write_jsonl
from harness.data.code_edit.action import parse_action
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.trajectory import SRLStep, TeacherStep, read_jsonl_rows
from harness.evaluators.code_edit_actions import extract_action_text, validate_actions
from harness.outcomes import Outcome
from sandbox.base import Sandbox

__all__ = ["FilterReport", "SourceStats", "filter_trajectories", "step_outcomes"]


@dataclass
class SourceStats:
    """Per data source: steps proposed, kept, and dropped by reason."""

    proposed: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1


@dataclass
class FilterReport:
    """What the filter read, kept and dropped (the evidence of ``srl_verified_steps``)."""

    raw_path: str
    out_dir: str
    kept: list[SRLStep]
    by_source: dict[str, SourceStats]
    bad_rows: list[str]
    #: (step id, source, "kept" or the drop reason) for every raw line, in file order
    fates: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw_path": self.raw_path,
            "out_dir": self.out_dir,
            "kept": len(self.kept),
            "kept_by_split": {
                s.value: sum(1 for k in self.kept if k.split is s) for s in (Split.TRAIN, Split.DEV)
            },
            "bad_rows": self.bad_rows[:20],
            "by_source": {
                src: {"proposed": st.proposed, "kept": st.kept, "dropped": dict(st.dropped)}
                for src, st in sorted(self.by_source.items())
            },
        }


def _screen(step: TeacherStep, records: dict[str, NormalizedRecord]) -> str:
    """Why the step cannot be verified ("" when it can)."""
    rec = records.get(step.record_id)
    if rec is None or (rec.pre_code, rec.instruction) != (step.pre_code, step.instruction):
        return "unknown_record"
    if rec.split is Split.TEST:
        return "heldout_split"
    if not step.action_text.strip():
        return "no_proposal"
    return ""


def filter_trajectories(
    raw_path: Path,
    records: Sequence[NormalizedRecord],
    *,
    out_dir: Path,
    sandbox: Sandbox | None = None,
) -> FilterReport:
    """Verify every raw step in ``sandbox`` (one batch) and publish the kept ones."""
    steps, bad = read_jsonl_rows(raw_path, TeacherStep)
    by_id = {r.id: r for r in records}
    by_source: dict[str, SourceStats] = {}
    if bad:
        by_source.setdefault("<unparsed>", SourceStats()).proposed += len(bad)
        by_source["<unparsed>"].dropped["bad_row"] = len(bad)
    fate = [_screen(step, by_id) for step in steps]  # by position: ids may repeat
    todo = [(n, by_id[s.record_id]) for n, s in enumerate(steps) if not fate[n]]
    for step in steps:
        by_source.setdefault(step.source, SourceStats()).proposed += 1
    results = validate_actions(
        [r for _, r in todo], [steps[n].action_text for n, _ in todo], sandbox=sandbox
    )
    kept: list[SRLStep] = []
    seen: set[tuple[str, str]] = set()
    for (n, rec), res in zip(todo, results, strict=True):
        step = steps[n]
        if not res.success:
            fate[n] = res.reason.split(":", 1)[0]
            continue
        action = parse_action(extract_action_text(step.action_text)).rule_yaml()
        if (rec.id, action) in seen:
            fate[n] = "duplicate"
            continue
        seen.add((rec.id, action))
        fate[n] = "kept"
        kept.append(
            SRLStep(
                id=step.id,
                record_id=rec.id,
                source=rec.source,
                split=rec.split,
                teacher=step.teacher,
                language=rec.language,
                instruction=rec.instruction,
                pre_code=rec.pre_code,
                action=action,
                verified=res.reason.split(":", 1)[0],
            )
        )
    report = FilterReport(str(raw_path), str(out_dir), kept, by_source, bad)
    report.fates = [(f"<unparsed>/{n}", "<unparsed>", "bad_row") for n in range(len(bad))]
    for step, why in zip(steps, fate, strict=True):
        report.fates.append((step.id, step.source, why))
        if why == "kept":
            by_source[step.source].kept += 1
        else:
            by_source[step.source].drop(why)
    with atomic_dir(out_dir) as tmp:
        for split in (Split.TRAIN, Split.DEV):
            rows = [k.model_dump_json() for k in kept if k.split is split]
            atomic_write_jsonl(tmp / f"{split.value}.jsonl", rows)
        atomic_write_json(tmp / "stats.json", report.as_dict())
    return report


def step_outcomes(report: FilterReport) -> list[Outcome]:
    """One outcome per raw step: 1 when kept, else 0 with the drop reason
    (``srl_verified_steps`` adds them up: ``of: sum``)."""
    return [
        Outcome(item_id=sid, value=float(why == "kept"), cluster=src, raw={"fate": why})
        for sid, src, why in report.fates
    ]
