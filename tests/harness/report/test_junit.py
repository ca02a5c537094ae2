"""Adding the final (multiplicity-adjusted) properties to a junit.xml pytest has written.

The end-to-end path (pytest's junitxml, the plugin, ``-n 0`` / ``-n 2``) is in
tests/harness/test_plugin.py; here the file edit itself: what is added, and that
nothing else in the file changes.
"""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.adjustment import adjust_records
from harness.errors import EvidenceError
from harness.evidence import EvidenceRecord
from harness.report.junit import (
    ADJUSTMENT_FIELDS,
    add_adjustment_properties,
    gate_properties,
    read_gate_properties,
)

MakeRecord = Callable[..., EvidenceRecord]


def _junit(cases: list[tuple[str, list[tuple[str, str]], str]]) -> str:
    """A junit.xml as pytest's junitxml writes it (declaration + ``ET.tostring``)."""
    suite = ET.Element("testsuite", name="pytest", tests=str(len(cases)))
    for name, props, extra in cases:
        case = ET.SubElement(suite, "testcase", classname="test_x", name=name, time="0.1")
        properties = ET.SubElement(case, "properties")
        for key, value in props:
            ET.SubElement(properties, "property", name=key, value=value)
        if extra:
            failure = ET.SubElement(case, "failure", message=extra)
            failure.text = extra + "\n<details & more>"
        ET.SubElement(case, "system-out").text = "captured ünïcode output"
    root = ET.Element("testsuites", name="pytest tests")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="unicode")


def _with_nodeid(rec: EvidenceRecord, nodeid: str) -> EvidenceRecord:
    return rec.model_copy(update={"nodeid": nodeid})


def test_each_gate_set_gets_its_final_numbers_and_nothing_else_changes(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    strong = _with_nodeid(make_record("strong", 90, 100), "test_x.py::test_strong")
    edge = _with_nodeid(make_record("edge", 59, 100), "test_x.py::test_edge")
    # the same test also checks "strong" once more: a second set (gate#2.*) in one test case
    again = _with_nodeid(make_record("strong", 95, 100), "test_x.py::test_edge")
    strong_adj, edge_adj, again_adj = adjust_records([strong, edge, again])
    original = _junit(
        [
            ("test_strong", [("other", "kept"), *gate_properties(strong)], ""),
            (
                "test_edge",
                [*gate_properties(edge), *gate_properties(again, index=1)],
                "INCONCLUSIVE: edge",
            ),
            ("test_plain", [("other", "no gate here")], ""),
        ]
    )
    path = tmp_path / "junit.xml"
    path.write_text(original, encoding="utf-8")
    os.chmod(path, 0o644)
    records = {
        ("test_x.py::test_strong", 0): strong_adj,
        ("test_x.py::test_edge", 0): edge_adj,
        ("test_x.py::test_edge", 1): again_adj,
    }

    assert add_adjustment_properties(path, records) == 3
    sets = read_gate_properties(path)
    first, second = sets["test_x::test_edge"]
    assert edge_adj.adjustment is not None and edge_adj.adjustment.upgraded
    assert first["verdict"] == "INCONCLUSIVE" and first["final_verdict"] == "PASS"
    # the upgraded PASS meets the tier a PASS needs, not the α/m decision's "none"
    assert first["tier"] == "none" and first["final_tier"] == "primary"
    assert first["p_adjusted"] == str(edge_adj.adjustment.p_adjusted)
    assert first["adjustment"] == "holm" and first["family_size"] == "3"
    assert second["id"] == "strong" and second["final_verdict"] == "PASS"
    assert second["rank"] == "1" and second["upgraded"] == "false"
    # the new fields follow their own set: gate.* then gate#2.*, never interleaved
    names = [
        p.get("name", "")
        for case in ET.parse(path).getroot().iter("testcase")
        if case.get("name") == "test_edge"
        for p in case.iter("property")
    ]
    assert names.index("gate.final_verdict") < names.index("gate#2.phase")
    assert names[-1] == "gate#2.final_tier"

    # removing exactly the added properties gives back pytest's file byte for byte
    root = ET.parse(path).getroot()
    for properties in root.iter("properties"):
        for prop in list(properties):
            if prop.get("name", "").partition(".")[2] in ADJUSTMENT_FIELDS:
                properties.remove(prop)
    assert (
        '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="unicode") == original
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644

    # a second call replaces the fields instead of adding them twice
    written = path.read_bytes()
    assert add_adjustment_properties(path, records) == 3
    assert path.read_bytes() == written


def test_a_gate_without_a_correction_says_none(tmp_path: Path, make_record: MakeRecord) -> None:
    rec = _with_nodeid(make_record("strong", 90, 100), "test_x.py::test_strong")
    assert rec.adjustment is None  # never adjusted: e.g. multiplicity: none
    path = tmp_path / "junit.xml"
    path.write_text(_junit([("test_strong", gate_properties(rec), "")]), encoding="utf-8")
    assert add_adjustment_properties(path, {("test_x.py::test_strong", 0): rec}) == 1
    (props,) = read_gate_properties(path)["test_x::test_strong"]
    assert props["adjustment"] == "none" and props["p_adjusted"] == ""
    assert props["final_verdict"] == props["verdict"] == "PASS"
    assert props["final_tier"] == props["tier"] == "primary"
    assert props["family_size"] == str(rec.family_size)


def test_unknown_test_cases_are_left_alone_and_a_broken_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    text = _junit([("test_plain", [("gate.nodeid", "elsewhere::t"), ("gate.id", "g")], "")])
    path.write_text(text, encoding="utf-8")
    assert add_adjustment_properties(path, {}) == 0
    assert path.read_text(encoding="utf-8") == text
    path.write_text("<testsuites><testsuite>", encoding="utf-8")  # torn
    with pytest.raises(EvidenceError, match=r"junit\.xml.*not a readable JUnit XML file"):
        add_adjustment_properties(path, {})
