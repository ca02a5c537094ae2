"""Evidence records for report tests, made by real gate checks on real 0/1 outcomes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.evidence import EvidenceRecord
from harness.gate import Gate, GateOptions, InconclusiveMode
from harness.outcomes import Outcome
from harness.spec import PhaseSpec

PHASE = PhaseSpec.model_validate(
    {
        "phase": "demo",
        "alpha": 0.05,
        "multiplicity": "holm",
        "gates": [
            {"id": "strong", "metric": "proportion", "direction": "ge", "tiers": {"primary": 0.5}},
            {
                "id": "edge",
                "metric": "proportion",
                "direction": "ge",
                "tiers": {"primary": 0.5},
            },
        ],
    }
)

MakeRecord = Callable[..., EvidenceRecord]


def outcomes(k: int, n: int, *, prefix: str = "i") -> list[Outcome]:
    return [Outcome(item_id=f"{prefix}{i}", value=1.0 if i < k else 0.0) for i in range(n)]


@pytest.fixture
def make_record() -> MakeRecord:
    """``make_record(gate_id, k, n, evidence_dir=None, phase=PHASE, **check_kwargs)``."""

    def make(
        gate_id: str,
        k: int,
        n: int,
        *,
        evidence_dir: Path | None = None,
        phase: PhaseSpec = PHASE,
        **kwargs: Any,
    ) -> EvidenceRecord:
        options = GateOptions(evidence_dir=evidence_dir, inconclusive=InconclusiveMode.PASS)
        gate = Gate(phase, phase.gate(gate_id), options=options)
        # FAIL verdicts fail the (imaginary) test; the record is what we want
        with contextlib.suppress(pytest.fail.Exception):
            gate.check(outcomes(k, n), **kwargs)
        assert gate.last_record is not None
        return gate.last_record

    return make
