"""junit.xml for ``harness merge``: one test case per merged gate decision.

A sharded run has no single pytest session to write the file, so the merge
renders it from the merged evidence: the same ``gate.*`` and adjustment
property sets pytest's file carries (:mod:`harness.report.junit`), a failure
element where the final verdict is not PASS (or a control gave the wrong
verdict), and the MISSING gates of the accounting.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness.accounting import RunAccount, final_status
from harness.evidence import EvidenceRecord, atomic_write_text
from harness.report.junit import add_missing_gates, adjustment_properties, gate_properties

__all__ = ["write_merged_junit"]


def _names(record: EvidenceRecord) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml derives them from the node id."""
    if not record.nodeid:
        return f"gate-harness.{record.phase}", f"{record.gate}[{record.subject}]"
    address, bracket, params = record.nodeid.partition("[")
    names = address.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _failure(record: EvidenceRecord) -> str | None:
    if record.expect is not None:
        ok = record.control_ok
        return None if ok else f"control mismatch: expected {record.expect}, got {record.verdict}"
    status = final_status(record)
    return None if str(status) == "PASS" else f"{status}: {record.decision.get('reason', '')}"


def write_merged_junit(path: Path, records: Sequence[EvidenceRecord], account: RunAccount) -> Path:
    """Write ``path`` atomically; MISSING gates are added by the shared junit helper."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="gate-harness-merge")
    cases: dict[tuple[str, str], ET.Element] = {}
    failures = 0
    for record in records:
        key = _names(record)
        case = cases.get(key)
        index = 0
        if case is None:
            case = cases[key] = ET.SubElement(suite, "testcase", classname=key[0], name=key[1])
            ET.SubElement(case, "properties")
        else:
            index = sum(1 for r in records[: records.index(record)] if _names(r) == key)
        props = case.find("properties")
        assert props is not None
        for name, value in gate_properties(record, index=index) + adjustment_properties(
            record, index=index
        ):
            ET.SubElement(props, "property", name=name, value=value)
        message = _failure(record)
        if message is not None and case.find("failure") is None:
            failures += 1
            ET.SubElement(case, "failure", message=message).text = message
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    declaration = '<?xml version="1.0" encoding="utf-8"?>'
    atomic_write_text(path, declaration + ET.tostring(root, encoding="unicode"))
    add_missing_gates(path, account)
    return path
