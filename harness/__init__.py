"""gate-harness: turn ML acceptance criteria into statistical evidence.

The public API is listed in ``__all__``.  Names are resolved lazily (PEP 562)
because this package is imported by the pytest plugin at the start of *every*
pytest run; importing scipy/statsmodels eagerly would slow every unit test run
and every xdist worker for no reason.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.decision import Decision, Verdict, decide
    from harness.errors import HarnessError
    from harness.evidence import EvidenceRecord, EvidenceStore, Lane, read_evidence
    from harness.gate import Gate, GateOptions, InconclusiveMode, SequentialMonitor
    from harness.metrics import estimate_metric
    from harness.outcomes import Outcome
    from harness.spec import GateSpec, PhaseSpec, load_phase, load_phases
    from harness.stats.estimate import Estimate

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "Estimate",
    "EvidenceRecord",
    "EvidenceStore",
    "Gate",
    "GateOptions",
    "GateSpec",
    "HarnessError",
    "InconclusiveMode",
    "Lane",
    "Outcome",
    "PhaseSpec",
    "SequentialMonitor",
    "Verdict",
    "__version__",
    "decide",
    "estimate_metric",
    "load_phase",
    "load_phases",
    "read_evidence",
]

_WHERE: dict[str, str] = {
    "Decision": "harness.decision",
    "Verdict": "harness.decision",
    "decide": "harness.decision",
    "HarnessError": "harness.errors",
    "EvidenceRecord": "harness.evidence",
    "EvidenceStore": "harness.evidence",
    "Lane": "harness.evidence",
    "read_evidence": "harness.evidence",
    "Gate": "harness.gate",
    "GateOptions": "harness.gate",
    "InconclusiveMode": "harness.gate",
    "SequentialMonitor": "harness.gate",
    "estimate_metric": "harness.metrics",
    "Outcome": "harness.outcomes",
    "GateSpec": "harness.spec",
    "PhaseSpec": "harness.spec",
    "load_phase": "harness.spec",
    "load_phases": "harness.spec",
    "Estimate": "harness.stats.estimate",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
