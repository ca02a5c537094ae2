"""JUnit ``<property>`` elements for gate evidence, and a reader for them.

pytest's junitxml plugin writes an item's ``user_properties`` as ``<property>``
elements of its ``<testcase>`` — on the xdist controller too, because the
properties travel inside the test report.  The plugin swaps the bulky evidence
JSON for the flat, CI-friendly properties below before junitxml sees the
report, so every gate test case carries exactly one readable property set.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.errors import EvidenceError
from harness.evidence import EvidenceRecord

__all__ = ["gate_properties", "read_gate_properties"]


def gate_properties(record: EvidenceRecord, *, index: int = 0) -> list[tuple[str, str]]:
    """Flat ``gate.*`` properties for one record (``gate#2.*`` for a test's second check)."""
    prefix = "gate" if index == 0 else f"gate#{index + 1}"
    est = record.estimate
    dec = record.decision
    values: list[tuple[str, object]] = [
        ("phase", record.phase),
        ("id", record.gate),
        ("subject", record.subject),
        ("lane", record.lane),
        ("metric", record.metric),
        ("direction", record.direction),
        ("verdict", dec.get("verdict")),
        ("tier", dec.get("tier")),
        ("estimate", est.get("value")),
        ("lo", est.get("lo")),
        ("hi", est.get("hi")),
        ("n", est.get("n")),
        ("threshold", dec.get("threshold")),
        ("alpha", record.alpha_decision),
        ("n_needed", dec.get("n_needed")),
        ("p_value", record.p_value),
        ("rule", dec.get("rule")),
        ("expect", record.expect),
        ("raw_output", record.raw_output),
        ("reason", dec.get("reason")),
    ]
    return [(f"{prefix}.{name}", "" if v is None else str(v)) for name, v in values]


def read_gate_properties(path: str | Path) -> dict[str, list[dict[str, str]]]:
    """Parse a JUnit XML file: test case id → list of property sets (one per gate check)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise EvidenceError(f"{path}: not a readable JUnit XML file ({exc})") from exc
    out: dict[str, list[dict[str, str]]] = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        sets: dict[str, dict[str, str]] = {}
        for prop in case.iter("property"):
            key = prop.get("name", "")
            if not key.startswith("gate"):
                continue
            prefix, _, field = key.partition(".")
            sets.setdefault(prefix, {})[field] = prop.get("value", "")
        if sets:
            out[name] = list(sets.values())
    return out
