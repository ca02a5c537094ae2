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


# ---------------------------------------------------------------- external-source schema


def test_default_world_digest_is_pinned() -> None:
    """The schema grew optional fields for AgentDojo/ASB; the embedded default's rows (and
    so the cache keys of every trained model) must serialise exactly as before."""
    from trainers.circuit_breaker.trainer import samples_digest

    world = generate_world(WorldConfig())
    digest = samples_digest([s for rows in world.values() for s in rows])
    assert digest == "d245f4236a7b3c6d7fcee4fc004392f3771b6275d5d044622aae945f94be09cf"


def _rich_sample(**call_args: object) -> dict[str, object]:
    tools = [
        {
            "name": "send_money",
            "description": "Send money.",
            "parameters": {
                "recipient": "string",
                "amount": "number",
                "tags": "array",
                "meta": "object",
                "recurring": "boolean",
                "note": "any",
            },
            "required": ["recipient", "amount"],
        }
    ]
    call = {"name": "send_money", "arguments": call_args}
    return {
        "id": "rich-1",
        "messages": [
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "content": "Pay Bob 12.5."},
            {"role": "assistant", "tool_calls": [call]},
        ],
        "tools": tools,
        "label": "retain",
        "subtype": "benign",
        "source": "test",
        "split": "train",
        "task": "pay",
    }


def test_tool_arguments_may_be_any_json_value() -> None:
    row = _rich_sample(
        recipient="bob",
        amount=12.5,
        tags=["a", "b"],
        meta={"k": [1, {"x": None}]},
        recurring=False,
        note=None,
    )
    sample = Sample.model_validate(row)
    args = sample.completion_call.arguments
    assert args["amount"] == 12.5 and isinstance(args["amount"], float)
    assert args["meta"] == {"k": [1, {"x": None}]}
    assert args["recurring"] is False
    # integers stay integers (a number parameter accepts them) and round-trip through JSON
    again = Sample.model_validate_json(Sample.model_validate(row).model_dump_json())
    assert again == sample
    assert (
        Sample.model_validate(_rich_sample(recipient="bob", amount=3)).completion_call.arguments[
            "amount"
        ]
        == 3
    )


def test_optional_parameters_may_be_left_out_or_null() -> None:
    Sample.model_validate(_rich_sample(recipient="bob", amount=1.0))
    Sample.model_validate(_rich_sample(recipient="bob", amount=1.0, tags=None))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"recipient": "bob"}, "missing ['amount']"),
        ({"recipient": "bob", "amount": "12"}, "argument 'amount'='12' is not number"),
        ({"recipient": "bob", "amount": True}, "argument 'amount'=True is not number"),
        ({"recipient": "bob", "amount": 1, "tags": "a"}, "argument 'tags'='a' is not array"),
        ({"recipient": "bob", "amount": 1, "recurring": 0}, "'recurring'=0 is not boolean"),
        ({"recipient": "bob", "amount": 1, "colour": "red"}, "unexpected ['colour']"),
    ],
)
def test_argument_type_errors_name_the_argument(args: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=__import__("re").escape(needle)):
        Sample.model_validate(_rich_sample(**args))


def test_required_must_name_parameters() -> None:
    from trainers.circuit_breaker.data import ToolSchema

    with pytest.raises(ValueError, match=r"required \['nope'\] are not among its parameters"):
        ToolSchema(name="t", description="", parameters={"a": "string"}, required=["nope"])


def test_unset_optional_fields_are_not_serialised() -> None:
    from trainers.circuit_breaker.data import TOOLS, ToolSchema

    assert "required" not in TOOLS[0].model_dump()
    assert "required" not in json.loads(TOOLS[0].model_dump_json())
    explicit = ToolSchema(name="t", description="", parameters={"a": "string"}, required=[])
    assert json.loads(explicit.model_dump_json())["required"] == []


def test_attack_without_a_correct_call_loads_from_jsonl(tmp_path: Path) -> None:
    """AgentDojo cases whose user task needs no further call: correct_call is null."""
    world = generate_world(SMALL)
    harmful = next(s for s in world[Split.TRAIN] if s.label is Label.HARMFUL)
    assert harmful.attack is not None
    row = json.loads(harmful.model_dump_json())
    row["attack"]["correct_call"] = None
    row["attack"]["attacker_value"] = None
    sample = Sample.model_validate(row)
    dump_jsonl([sample], tmp_path / "s.jsonl")
    (back,) = load_jsonl(tmp_path / "s.jsonl")
    assert back == sample and back.attack is not None and back.attack.correct_call is None


def test_pooled_samples_must_have_unique_ids() -> None:
    from trainers.circuit_breaker.data import check_unique_ids

    rows = generate_world(SMALL)[Split.EVAL]
    check_unique_ids(rows, where="one split")
    with pytest.raises(DataValidationError, match=r"1 sample ids occur more than once across a\+b"):
        check_unique_ids([*rows, rows[0]], where="a+b")
