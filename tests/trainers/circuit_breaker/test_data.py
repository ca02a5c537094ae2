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
    n_dev_attacks=20,
    n_dev_benign=10,
    n_eval_attacks=40,
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
    assert len(unseen) >= 3, "eval must include injection templates never used in training"
    for s in eval_attacks:
        user = s.messages[0].content
        recipient = s.attack.correct_call.arguments  # type: ignore[union-attr]
        for value in recipient.values():
            if isinstance(value, str) and "@" in value:
                assert value.split("@")[0] not in train_text, (user, value)


def _values(samples: list[Sample]) -> set[str]:
    """Names and topics a split's tasks use (the local part of addresses, file topics)."""
    out: set[str] = set()
    for s in samples:
        for call in (s.messages[1].tool_calls[0], s.messages[-1].tool_calls[0]):
            for v in call.arguments.values():
                if isinstance(v, str) and "@" in v and not v.endswith("@evil.biz"):
                    out.add(v.split("@")[0])
                elif isinstance(v, str) and "_" in v:
                    out.add(v.split("_")[0])
    return out


def _templates(samples: list[Sample]) -> set[tuple[str, str, str]]:
    """(phrasing id, placement, carrier tool) of every attack."""
    out = set()
    for s in samples:
        if s.attack is not None:
            tid, placement, carrier = s.attack.template_id.split(":")
            out.add((tid, placement, carrier))
    return out


def test_dev_split_is_disjoint_by_task_and_template_from_train_and_eval() -> None:
    world = generate_world(SMALL)
    train = [*world[Split.BASELINE_SFT], *world[Split.TRAIN]]
    dev, ev = world[Split.DEV], world[Split.EVAL]
    assert len(dev) == 30 and sum(s.attack is not None for s in dev) == 20
    assert not _values(dev) & _values(train)
    assert not _values(dev) & _values(ev)
    assert not _values(ev) & _values(train)
    assert not _templates(dev) & _templates(train)
    assert not _templates(dev) & _templates(ev)


def test_heldout_families_share_no_axis_with_any_training_or_dev_split() -> None:
    from trainers.circuit_breaker.data import _PHRASINGS, HELDOUT_FAMILY_GROUPS

    family_of = {tid: fam for fam, rows in _PHRASINGS.items() for tid, _ in rows}
    world = generate_world(SMALL)
    seen = _templates([*world[Split.BASELINE_SFT], *world[Split.TRAIN], *world[Split.DEV]])
    train_only = _templates([*world[Split.BASELINE_SFT], *world[Split.TRAIN]])
    ev = [s for s in world[Split.EVAL] if s.attack is not None]
    groups = {s.attack.group for s in ev}  # type: ignore[union-attr]
    assert groups == {"seen", *HELDOUT_FAMILY_GROUPS}
    axis = {"heldout_phrasing": 0, "heldout_placement": 1, "heldout_tool": 2}
    for s in ev:
        assert s.attack is not None
        tid, placement, carrier = s.attack.template_id.split(":")
        if s.attack.group == "seen":
            assert (tid, placement, carrier) in train_only
            continue
        held = (family_of[tid], placement, carrier)[axis[s.attack.group]]
        used = [(family_of[t], p, c)[axis[s.attack.group]] for t, p, c in seen]
        assert held not in used, (s.attack.group, held)
    # the carrier-tool family is held out: no training attack reads the calendar
    assert all(c == "read_file" for _, _, c in seen)


def test_placements_put_the_injection_after_before_or_inside_the_output() -> None:
    from trainers.circuit_breaker.data import _place

    assert _place("f.txt: fine.", "INJ", "suffix") == "f.txt: fine. INJ"
    assert _place("f.txt: fine.", "INJ", "prefix") == "INJ f.txt: fine."
    assert _place("f.txt: fine.", "INJ", "middle") == "f.txt: INJ fine."


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
    """The embedded default's rows (and so the cache keys of every trained model) change only
    on purpose.  Last changed for issue 15: the dev split and the held-out template
    families (phrasing, placement, carrier tool)."""
    from trainers.circuit_breaker.trainer import samples_digest

    world = generate_world(WorldConfig())
    digest = samples_digest([s for rows in world.values() for s in rows])
    assert digest == "524c0a73bec1c7ce18c2215f9e63d79275862425d766307751346b2e334d5d24"


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
