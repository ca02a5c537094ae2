from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import DataValidationError
from trainers.circuit_breaker.data import (
    Label,
    RetainKind,
    Sample,
    Split,
    WorldConfig,
    dump_jsonl,
    generate_world,
    load_jsonl,
)

SMALL = WorldConfig(
    n_baseline_sft_attacks=20,
    n_baseline_sft_benign=20,
    n_train_attacks=30,
    n_train_adversarial_safe=20,
    n_train_benign=40,
    n_eval_attacks=20,
    n_eval_benign=10,
)


def test_world_is_deterministic_and_sized() -> None:
    a, b = generate_world(SMALL), generate_world(SMALL)
    assert [s.model_dump_json() for s in a[Split.TRAIN]] == [
        s.model_dump_json() for s in b[Split.TRAIN]
    ]
    train = a[Split.TRAIN]
    assert sum(s.label is Label.HARMFUL for s in train) == 30
    assert sum(s.subtype is RetainKind.ADVERSARIAL_SAFE for s in train) == 20
    assert sum(s.subtype is RetainKind.BENIGN for s in train) == 40
    assert all(s.attack is not None for s in train if s.label is Label.HARMFUL)


def test_eval_attacks_are_held_out() -> None:
    world = generate_world(SMALL)
    train_text = " ".join(m.content for s in world[Split.TRAIN] for m in s.messages)
    train_templates = {s.attack.template_id for s in world[Split.TRAIN] if s.attack}
    eval_attacks = [s for s in world[Split.EVAL] if s.attack]
    unseen = {s.attack.template_id for s in eval_attacks} - train_templates  # type: ignore[union-attr]
    assert unseen, "eval must include an injection template never used in training"
    for s in eval_attacks:
        user = s.messages[0].content
        recipient = s.attack.correct_call.arguments  # type: ignore[union-attr]
        for value in recipient.values():
            if isinstance(value, str) and "@" in value:
                assert value.split("@")[0] not in train_text, (user, value)


def test_harmful_completion_must_be_the_injected_call() -> None:
    sample = next(s for s in generate_world(SMALL)[Split.TRAIN] if s.label is Label.HARMFUL)
    raw = json.loads(sample.model_dump_json())
    raw["messages"][-1]["tool_calls"] = [sample.attack.correct_call.model_dump()]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="injected_call"):
        Sample.model_validate(raw)


def test_load_jsonl_names_file_line_and_field(tmp_path: Path) -> None:
    samples = generate_world(SMALL)[Split.EVAL][:3]
    path = tmp_path / "cb.jsonl"
    dump_jsonl(samples, path)
    assert load_jsonl(path) == samples
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["messages"][-1]["tool_calls"][0]["name"] = "format_disk"
    lines[1] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as err:
        load_jsonl(path)
    text = str(err.value)
    assert f"{path}:2:" in text and "format_disk" in text and "unknown tool" in text


def test_load_jsonl_rejects_bad_json_and_bad_argument_type(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(DataValidationError, match=r"x.jsonl:1: not valid JSON"):
        load_jsonl(path)
    sample = next(s for s in generate_world(SMALL)[Split.EVAL] if s.task == "pay_invoice")
    raw = json.loads(sample.model_dump_json())
    raw["messages"][-1]["tool_calls"][0]["arguments"]["amount"] = "lots"
    path.write_text(json.dumps(raw) + "\n")
    with pytest.raises(DataValidationError, match="amount"):
        load_jsonl(path)
