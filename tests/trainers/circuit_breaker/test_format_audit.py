from __future__ import annotations

import copy
from typing import Any

import pytest

from trainers.circuit_breaker.data import Split, ToolCall, WorldConfig, generate_world
from trainers.circuit_breaker.format_audit import (
    audit_sample,
    encode_completion,
    highlight_mask,
    parse_tool_call,
)

WORLD = generate_world(
    WorldConfig(
        n_baseline_sft_attacks=5,
        n_baseline_sft_benign=5,
        n_train_attacks=10,
        n_train_adversarial_safe=10,
        n_train_benign=10,
        n_eval_attacks=4,
        n_eval_benign=4,
    )
)


def test_strict_parser_and_json_fallback() -> None:
    call = ToolCall(name="send_file", arguments={"path": "a.txt", "recipient": "b@c.d"})
    strict = parse_tool_call(
        '<|python_tag|>{"name": "send_file", "parameters": {"path": "a.txt", "recipient": "b@c.d"}}'
        "<|eom_id|>"
    )
    assert strict is not None and strict.mode == "strict" and strict.call == call
    loose = parse_tool_call(
        'sure! {"name": "send_file", "arguments": {"path": "a.txt", "recipient": "b@c.d"}} ok'
    )
    assert loose is not None and loose.mode == "json_fallback" and loose.call == call
    assert parse_tool_call("to to to to") is None
    assert parse_tool_call('<|python_tag|>{"name": "x", "parameters": [1]}<|eom_id|>') is None


def test_every_world_sample_passes_the_audit(tokenizer: Any) -> None:
    samples = [s for split in WORLD.values() for s in split]
    problems = [p for s in samples for p in audit_sample(tokenizer, s)]
    assert problems == [], problems[0].describe() if problems else ""


def test_loss_mask_covers_exactly_the_final_call(tokenizer: Any) -> None:
    sample = WORLD[Split.TRAIN][0]
    enc = encode_completion(tokenizer, sample.prompt_messages, sample.messages[-1])
    shown = highlight_mask(tokenizer, enc.input_ids, enc.completion_mask)
    assert shown.count("[[") == 1 and shown.endswith("]]")
    masked = shown[shown.index("[[") + 2 : -2]
    assert masked.startswith("<|python_tag|>") and masked.endswith("<|eom_id|>")
    parsed = parse_tool_call(masked)
    assert parsed is not None and parsed.call == sample.completion_call
    # the earlier (prompt) tool call is rendered but not trained on
    assert shown.index("<|python_tag|>") < shown.index("[[")


_CALL_OK = (
    "<|python_tag|>{{ {'name': tc['function']['name'], "
    "'parameters': tc['function']['arguments']} | tojson }}<|eom_id|>"
)


def _template(*, call: str = _CALL_OK, gen_prompt: str = "") -> str:
    """A self-contained Llama-3-style template whose tool-call rendering we can break."""
    return (
        "{{- bos_token -}}{%- for m in messages -%}"
        "<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
        "{%- if m.get('tool_calls') -%}{%- for tc in m['tool_calls'] -%}" + call + "{%- endfor -%}"
        "{%- else -%}{{ m['content'] }}<|eot_id|>{%- endif -%}{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|start_header_id|>assistant<|end_header_id|>"
        + gen_prompt
        + "{%- endif -%}"
    )


def _with_template(tokenizer: Any, template: str) -> Any:
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def test_reference_template_passes(tokenizer: Any) -> None:
    assert audit_sample(_with_template(tokenizer, _template()), WORLD[Split.TRAIN][0]) == []


def test_audit_flags_a_template_without_tool_call_tags(tokenizer: Any) -> None:
    bad = _template(call=_CALL_OK.replace("<|python_tag|>", "").replace("<|eom_id|>", "<|eot_id|>"))
    problems = audit_sample(_with_template(tokenizer, bad), WORLD[Split.TRAIN][0])
    assert problems
    text = "\n".join(p.describe() for p in problems)
    assert "rendered 0 tool-call spans" in text
    assert "[[" in text and "]]" in text  # the mask-highlighted rendering is printed


def test_audit_flags_wrong_argument_key(tokenizer: Any) -> None:
    bad = _template(call=_CALL_OK.replace("'parameters'", "'args'"))
    problems = audit_sample(_with_template(tokenizer, bad), WORLD[Split.TRAIN][0])
    assert any("parses to None" in p.problem for p in problems)


def test_audit_flags_prompt_that_is_not_a_prefix(tokenizer: Any) -> None:
    bad = _template(gen_prompt="OK")
    problems = audit_sample(_with_template(tokenizer, bad), WORLD[Split.TRAIN][0])
    assert problems and "cannot be masked" in problems[0].problem


@pytest.mark.parametrize("split", list(Split))
def test_completion_call_round_trips(tokenizer: Any, split: Split) -> None:
    for sample in WORLD[split][:3]:
        enc = encode_completion(tokenizer, sample.prompt_messages, sample.messages[-1])
        text = tokenizer.decode(enc.completion_ids, skip_special_tokens=False)
        parsed = parse_tool_call(text)
        assert parsed is not None and parsed.mode == "strict"
        assert parsed.call == sample.completion_call
