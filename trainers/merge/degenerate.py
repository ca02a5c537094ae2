"""Degenerate-merge detection with fallback (the brief's "merges create degenerate models").

Three checks, cheapest first:

* **non-finite** — any NaN/Inf parameter;
* **collapsed / exploded norm** — a tensor whose L2 norm is outside
  ``[low, high] ×`` the mean norm of the same tensor across the reference models
  (tensors whose reference norm is 0, e.g. zero-initialised biases, are skipped);
* **constant outputs** — optional ``probe(state_dict) → Tensor[n_inputs, …]``; if the
  outputs barely vary across inputs (max std over inputs ≤ ``const_eps``) the model
  ignores its input.

:func:`merge_or_fallback` builds a merge, checks it, and returns the fallback (e.g. the
best parent) instead when it is degenerate, with the reasons, so the evolution loop can
count fallbacks as evidence instead of silently scoring a broken model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from trainers.merge.tensor_ops import StateDict

__all__ = ["DegeneracyReport", "MergeOutcome", "detect_degenerate", "merge_or_fallback"]

Probe = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class DegeneracyReport:
    """What was wrong with a merged state dict (empty ``problems`` = healthy)."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True iff no check fired."""
        return not self.problems


def _norm_problems(
    sd: Mapping[str, torch.Tensor],
    references: Sequence[Mapping[str, torch.Tensor]],
    low: float,
    high: float,
) -> list[str]:
    out = []
    for k, v in sd.items():
        ref = sum(float(r[k].float().norm()) for r in references) / len(references)
        if ref == 0.0:
            continue
        ratio = float(v.float().norm()) / ref
        if ratio < low:
            out.append(f"collapsed norm: {k} is {ratio:.2e}× the parents' mean norm")
        elif ratio > high:
            out.append(f"exploded norm: {k} is {ratio:.2e}× the parents' mean norm")
    return out


def detect_degenerate(
    sd: Mapping[str, torch.Tensor],
    *,
    references: Sequence[Mapping[str, torch.Tensor]],
    probe: Probe | None = None,
    low: float = 1e-2,
    high: float = 1e2,
    const_eps: float = 1e-6,
) -> DegeneracyReport:
    """Run the three checks (module doc); the report lists every problem found."""
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    problems = [f"non-finite values in {k}" for k in bad]
    if not problems:
        problems += _norm_problems(sd, references, low, high)
    if not problems and probe is not None:
        with torch.no_grad():
            outputs = probe(sd).float()
        if not bool(outputs.isfinite().all()):
            problems.append("non-finite outputs on the probe inputs")
        elif outputs.shape[0] > 1 and float(outputs.std(dim=0).max()) <= const_eps:
            problems.append(
                f"constant outputs: max std across {outputs.shape[0]} probe inputs ≤ {const_eps}"
            )
    return DegeneracyReport(tuple(problems))


@dataclass(frozen=True)
class MergeOutcome:
    """The state dict to use, whether it is the fallback, and why."""

    state_dict: StateDict
    used_fallback: bool
    report: DegeneracyReport = field(default_factory=DegeneracyReport)


def merge_or_fallback(
    build: Callable[[], StateDict],
    *,
    fallback: Mapping[str, torch.Tensor],
    references: Sequence[Mapping[str, torch.Tensor]],
    probe: Probe | None = None,
) -> MergeOutcome:
    """Build a merge; return ``fallback`` (copied) if :func:`detect_degenerate` flags it."""
    merged = build()
    report = detect_degenerate(merged, references=references, probe=probe)
    if report.ok:
        return MergeOutcome(merged, used_fallback=False, report=report)
    return MergeOutcome({k: v.clone() for k, v in fallback.items()}, True, report)
