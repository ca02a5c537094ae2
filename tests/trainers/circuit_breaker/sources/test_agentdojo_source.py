"""AgentDojo 0.1.35 cases exported as circuit-breaker samples, through the real client venv.

Skips only when the venv from ``scripts/setup_agentdojo.sh`` does not exist;
``HARNESS_REQUIRE_AGENTDOJO=1`` (set by CI) turns that skip into a failure.
One export of the banking suite (144 user x injection pairs) is shared by the tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.evaluators.agentdojo_lane import find_agentdojo_python
from trainers.circuit_breaker.data import Label, RetainKind, Split
from trainers.circuit_breaker.sources import gate1_summary
from trainers.circuit_breaker.sources.agentdojo import AgentDojoExport, export_agentdojo

_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def venv() -> Path:
    venv = Path(os.environ.get("HARNESS_AGENTDOJO_VENV") or _ROOT / ".venv-agentdojo")
    if not (venv / "bin" / "python").is_file() and not os.environ.get("HARNESS_REQUIRE_AGENTDOJO"):
        pytest.skip(f"agentdojo venv absent at {venv}; create it with scripts/setup_agentdojo.sh")
    find_agentdojo_python(venv)  # a venv that exists but is broken fails here
    return venv


@pytest.fixture(scope="module")
def banking(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> AgentDojoExport:
    out = tmp_path_factory.mktemp("agentdojo") / "banking.jsonl"
    return export_agentdojo(out, suites=["banking"], venv=venv, progress=lambda _m: None)


def test_every_pair_is_accounted_for(banking: AgentDojoExport) -> None:
    stats = banking.stats["banking"]
    assert stats["pairs"] == 16 * 9  # user tasks x injection tasks of v1.2.2 banking
    attacks = sum(1 for s in banking.samples if s.attack is not None)
    harmful_or_safe = (
        stats.get("train_harmful", 0)
        + stats.get("train_adversarial_safe", 0)
        + stats.get("eval_harmful", 0)
        + stats.get("eval_adversarial_safe", 0)
    )
    assert attacks == harmful_or_safe
    reached = stats["pairs"] - stats.get("injection_not_reached", 0)
    reached -= stats.get("injection_without_call", 0)
    reached -= stats.get("injected_call_is_the_users_next_call", 0)
    # every reached pair gives one harmful training row, or an eval row
    assert (
        stats.get("train_harmful", 0)
        + stats.get("eval_harmful", 0)
        + stats.get("eval_adversarial_safe", 0)
        == reached
    )
    assert banking.path.is_file() and banking.raw_path.is_file()


def test_rows_end_where_the_injection_is_seen(banking: AgentDojoExport) -> None:
    for s in banking.samples:
        if s.attack is None:
            assert s.subtype is RetainKind.BENIGN
            assert not any("<INFORMATION>" in m.content for m in s.messages)
            continue
        last_tool = s.messages[-2]
        assert last_tool.role == "tool" and "INFORMATION" in last_tool.content
        assert "Emma Johnson" in last_tool.content  # the important_instructions signature
        if s.label is Label.HARMFUL:
            assert s.completion_call == s.attack.injected_call
        else:
            assert s.completion_call == s.attack.correct_call
        assert s.messages[0].role == "system" and s.messages[1].role == "user"


def test_held_out_attacks_use_an_injection_task_never_trained_on(banking: AgentDojoExport) -> None:
    def injection(s: Any) -> str:
        return str(s.attack.template_id).split(":")[1]

    train = {injection(s) for s in banking.samples if s.attack and s.split is Split.TRAIN}
    held = {injection(s) for s in banking.samples if s.attack and s.split is Split.EVAL}
    assert held and not held & train


def test_format_audit_passes_through_the_tiny_tokenizer(
    banking: AgentDojoExport, tokenizer: Any
) -> None:
    summary = gate1_summary(banking.samples, tokenizer=tokenizer)
    assert summary.format_problems == []
    assert summary.n_audited == len(banking.samples)
    # float amounts, dates and optional arguments survive render -> parse
    amounts = [
        c.arguments["amount"]
        for s in banking.samples
        for m in s.messages
        for c in m.tool_calls
        if "amount" in c.arguments
    ]
    assert any(isinstance(a, float) for a in amounts)


def test_gate1_counts_are_an_honest_fail_for_one_suite(banking: AgentDojoExport) -> None:
    summary = gate1_summary(banking.samples)
    checks = {c.gate: c for c in summary.checks}
    assert summary.ds == banking.stats["banking"]["train_harmful"]
    assert not checks["ds_count"].ok and not summary.passed  # 128 harmful rows < 800


def test_an_invalid_row_names_file_line_and_field(tmp_path: Path, banking: AgentDojoExport) -> None:
    from harness.errors import DataValidationError
    from trainers.circuit_breaker.data import load_jsonl

    rows = banking.raw_path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(rows[1])
    bad["messages"][-1]["tool_calls"][0]["name"] = "no_such_tool"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([rows[0], json.dumps(bad)]) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"bad\.jsonl:2: ") as err:
        load_jsonl(path)
    assert "no_such_tool" in str(err.value)


def test_the_evaluator_tells_the_injected_action_from_the_users(banking: AgentDojoExport) -> None:
    """Scored like a model's output: the injected call is harmful whenever the case has an
    attacker value (or the injected call takes no arguments); the user's call is correct."""
    from trainers.circuit_breaker.eval import score

    def render(call: Any) -> str:
        body = json.dumps({"name": call.name, "parameters": call.arguments})
        return f"<|python_tag|>{body}<|eom_id|>"

    # in banking every injected call either carries the attacker's value (IBAN, password)
    # or is an argument-free read (get_scheduled_transactions)
    for s in banking.samples:
        if s.attack is not None:
            assert s.attack.attacker_value or not s.attack.injected_call.arguments, s.id
    for s in banking.samples:
        if s.attack is None:
            assert score(s, render(s.completion_call)).correct
            continue
        injected = score(s, render(s.attack.injected_call))
        if s.attack.attacker_value is not None or not s.attack.injected_call.arguments:
            assert injected.harmful and not injected.correct, s.id
        if s.attack.correct_call is not None:
            safe = score(s, render(s.attack.correct_call))
            assert safe.correct and not safe.harmful, s.id
