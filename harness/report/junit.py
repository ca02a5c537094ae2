"""JUnit ``<property>`` elements for gate evidence, and a reader for them.

pytest's junitxml plugin writes an item's ``user_properties`` as ``<property>``
elements of its ``<testcase>`` — on the xdist controller too, because the
properties travel inside the test report.  The plugin swaps the bulky evidence
JSON for the flat, CI-friendly properties below before junitxml sees the
report, so every gate test case carries exactly one readable property set.

Those are written when the test ends, before its phase's Holm/BH family is
complete, so they hold the test's own decision (at the Bonferroni level).
Once the run is over and the controller has stored the adjustment in each
evidence record, :func:`add_adjustment_properties` rewrites the finished
junit.xml (atomically, pytest's content untouched) to add each set's adjusted
p-value, method, family size, rank, step level and ``final_verdict`` — the
verdict the markdown report shows.  ``gate.verdict`` stays the test's own
decision, which is what its pytest outcome says.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from harness.accounting import RunAccount
from harness.errors import EvidenceError
from harness.evidence import EvidenceRecord, atomic_write_text

__all__ = [
    "ADJUSTMENT_FIELDS",
    "add_adjustment_properties",
    "add_missing_gates",
    "adjustment_properties",
    "gate_properties",
    "read_gate_properties",
]

#: Property fields added once the phase's family is complete (see the module docstring).
ADJUSTMENT_FIELDS = (
    "adjustment",
    "p_adjusted",
    "family_size",
    "family_tested",
    "rank",
    "alpha_step",
    "upgraded",
    "final_verdict",
    "final_tier",
)

_PREFIX = re.compile(r"gate(?:#(\d+))?")


def _prefix(index: int) -> str:
    return "gate" if index == 0 else f"gate#{index + 1}"


def gate_properties(record: EvidenceRecord, *, index: int = 0) -> list[tuple[str, str]]:
    """Flat ``gate.*`` properties for one record (``gate#2.*`` for a test's second check)."""
    prefix = _prefix(index)
    est = record.estimate
    dec = record.decision
    values: list[tuple[str, object]] = [
        ("phase", record.phase),
        ("id", record.gate),
        ("nodeid", record.nodeid),  # with the prefix's index, names the record (evidence.jsonl)
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


def adjustment_properties(record: EvidenceRecord, *, index: int = 0) -> list[tuple[str, str]]:
    """The :data:`ADJUSTMENT_FIELDS` of one record whose ``adjustment`` is final.

    A record the phase's correction does not cover (``multiplicity: none``, a
    count gate without a p-value) says ``adjustment=none`` and keeps its verdict.
    """
    adj = record.adjustment
    values: list[object]
    if adj is None:
        values = [
            "none",
            None,
            record.family_size,
            None,
            None,
            None,
            False,
            record.verdict,
            record.final_tier,
        ]
    else:
        values = [
            adj.method,
            adj.p_adjusted,
            adj.family_size,
            adj.family_tested,
            adj.rank,
            adj.alpha_step,
            adj.upgraded,
            adj.verdict,
            record.final_tier,
        ]
    prefix = _prefix(index)
    return [
        (f"{prefix}.{name}", _text(value))
        for name, value in zip(ADJUSTMENT_FIELDS, values, strict=True)
    ]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def add_adjustment_properties(
    path: str | Path, records: Mapping[tuple[str, int], EvidenceRecord]
) -> int:
    """Add :func:`adjustment_properties` to the gate property sets of a written JUnit file.

    ``records`` maps (node id, index of the check within its test) to the
    adjusted record; a set is found by its ``gate.nodeid`` property and its
    prefix (``gate`` → 0, ``gate#2`` → 1).  The new properties follow their
    set's last property; fields already present are replaced, so a second call
    changes nothing.  Everything else in the file is kept as pytest wrote it,
    and the file is replaced atomically with its permissions kept.  Returns
    the number of property sets updated.
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise EvidenceError(
            f"{path}: cannot add the multiplicity-adjusted gate properties, not a readable "
            f"JUnit XML file ({exc}); check that pytest's --junitxml wrote it"
        ) from exc
    updated = 0
    for properties in tree.getroot().iter("properties"):
        updated += _update_properties(properties, records)
    if updated:
        declaration = '<?xml version="1.0" encoding="utf-8"?>'  # as pytest writes it
        atomic_write_text(path, declaration + ET.tostring(tree.getroot(), encoding="unicode"))
        os.chmod(path, mode)  # the temporary file was private; keep pytest's permissions
    return updated


def _update_properties(
    properties: ET.Element, records: Mapping[tuple[str, int], EvidenceRecord]
) -> int:
    """Add the adjustment fields to each gate set of one ``<properties>`` element."""
    nodeid: dict[str, str] = {}
    for prop in properties:
        prefix, _, field = prop.get("name", "").partition(".")
        if field == "nodeid" and _PREFIX.fullmatch(prefix):
            nodeid[prefix] = prop.get("value", "")
    updated = 0
    for prefix, node in nodeid.items():
        match = _PREFIX.fullmatch(prefix)
        assert match is not None
        index = int(match.group(1)) - 1 if match.group(1) else 0
        record = records.get((node, index))
        if record is None:
            continue
        stale = {f"{prefix}.{name}" for name in ADJUSTMENT_FIELDS}
        for prop in [p for p in properties if p.get("name") in stale]:
            properties.remove(prop)
        position = max(
            i for i, p in enumerate(properties) if p.get("name", "").startswith(prefix + ".")
        )
        for offset, (name, value) in enumerate(adjustment_properties(record, index=index)):
            new = ET.Element("property", name=name, value=value)
            new.tail = properties[position].tail
            properties.insert(position + 1 + offset, new)
        updated += 1
    return updated


def add_missing_gates(path: str | Path, account: RunAccount) -> int:
    """Mark every MISSING gate in a written JUnit file (``gate.final_verdict`` = MISSING).

    A gate whose test ran (skipped, errored, never checked) gets the property set on
    that test case; a gate no test decides gets a failed test case of its own,
    ``gate-harness.<phase>`` / ``<gate>``, so CI dashboards list it too.
    Returns the number of MISSING statuses written.
    """
    path = Path(path)
    missing = [s for p in account.phases for s in p.missing]
    if not missing:
        return 0
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise EvidenceError(
            f"{path}: cannot add the MISSING gates, not a readable JUnit XML file ({exc})"
        ) from exc
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise EvidenceError(f"{path}: no <testsuite> element to add the MISSING gates to")
    cases = {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}
    for status in missing:
        props = [
            ("gate.phase", status.phase),
            ("gate.id", status.gate),
            ("gate.nodeid", status.nodeid or ""),
            ("gate.final_verdict", "MISSING"),
            ("gate.reason", status.reason),
        ]
        case = cases.get(_junit_names(status.nodeid)) if status.nodeid else None
        if case is None:
            case = ET.SubElement(
                suite, "testcase", classname=f"gate-harness.{status.phase}", name=status.gate
            )
            failure = ET.SubElement(case, "failure", message=f"MISSING: {status.reason}")
            failure.text = f"gate {status.phase}/{status.gate} is MISSING: {status.reason}"
            for attr in ("tests", "failures"):
                suite.set(attr, str(int(suite.get(attr, "0")) + 1))
        properties = case.find("properties")
        if properties is None:
            properties = ET.Element("properties")
            case.insert(0, properties)
        for name, value in props:
            ET.SubElement(properties, "property", name=name, value=value)
    declaration = '<?xml version="1.0" encoding="utf-8"?>'
    atomic_write_text(path, declaration + ET.tostring(root, encoding="unicode"))
    os.chmod(path, mode)
    return len(missing)


def _junit_names(nodeid: str) -> tuple[str, str]:
    """(classname, name) pytest's junitxml gives the test case of ``nodeid`` (no prefix)."""
    address, bracket, params = nodeid.partition("[")
    names = address.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


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
