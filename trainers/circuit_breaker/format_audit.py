"""Tool-call format: strict parser, chat-template render audit, and loss-mask audit.

The brief's "format mismatch" failure mode is silent: if the training text
renders a tool call differently from what the tokenizer's own chat template
produces at inference, or the loss mask covers the wrong tokens, the circuit
breaker trains on something the model never emits.  So every sample goes
through ``tokenizer.apply_chat_template`` here, the rendered tool call must be
exactly ``<|python_tag|>{json}<|eom_id|>`` and parse back to the same call, and
the completion mask must cover exactly those tokens.  Failures carry a rendered,
mask-highlighted sample so a human sees the problem at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import DataValidationError

from .data import Message, Sample, ToolCall

__all__ = [
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "EncodedSample",
    "FormatProblem",
    "ParsedCall",
    "audit_sample",
    "encode_completion",
    "highlight_mask",
    "is_valid_json",
    "parse_tool_call",
]

TOOL_CALL_START = "<|python_tag|>"
TOOL_CALL_END = "<|eom_id|>"
_STRICT = re.compile(
    r"^\s*" + re.escape(TOOL_CALL_START) + r"(\{.*\})" + re.escape(TOOL_CALL_END) + r"\s*$",
    re.DOTALL,
)


@dataclass(frozen=True)
class ParsedCall:
    """A tool call recovered from model text; ``mode`` says which parser found it."""

    call: ToolCall
    mode: Literal["strict", "json_fallback"]


def is_valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False
    return True


def _to_call(obj: Any) -> ToolCall | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("parameters", obj.get("arguments"))
    if not isinstance(args, dict):
        return None
    try:
        return ToolCall(name=obj["name"], arguments=args)
    except ValueError:
        return None


def parse_tool_call(text: str) -> ParsedCall | None:
    """Parse one tool call: strict ``<|python_tag|>{json}<|eom_id|>`` first, then JSON fallback.

    The fallback (the note's ``is_valid_json`` rule) accepts the first balanced
    ``{...}`` span that is valid JSON with a ``name`` and an argument object, so
    a model whose special tokens drifted is scored on the call it made, while the
    mode field keeps the strict-format failure visible.
    """
    match = _STRICT.match(text)
    if match and is_valid_json(match.group(1)):
        call = _to_call(json.loads(match.group(1)))
        if call is not None:
            return ParsedCall(call, "strict")
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    span = text[start : end + 1]
                    if is_valid_json(span):
                        call = _to_call(json.loads(span))
                        if call is not None:
                            return ParsedCall(call, "json_fallback")
                    break
    return None


@dataclass(frozen=True)
class EncodedSample:
    """Token ids of a whole conversation and the mask of the completion tokens."""

    input_ids: list[int]
    completion_mask: list[int]
    prompt_len: int

    @property
    def completion_ids(self) -> list[int]:
        return self.input_ids[self.prompt_len :]


@dataclass(frozen=True)
class FormatProblem:
    sample_id: str
    problem: str
    rendered: str

    def describe(self) -> str:
        return f"sample '{self.sample_id}': {self.problem}\n--- rendered (mask in [[ ]]) ---\n" + (
            self.rendered
        )


def _chat(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [m.to_chat() for m in messages]


def _render(tokenizer: Any, messages: Sequence[Message], *, generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(
        _chat(messages), tokenize=False, add_generation_prompt=generation_prompt
    )
    return str(text)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_completion(
    tokenizer: Any, prompt: Sequence[Message], completion: Message, *, sample_id: str = "?"
) -> EncodedSample:
    """Tokenise ``prompt + [completion]`` with the tokenizer's template; mask = completion tokens.

    Raises :class:`DataValidationError` when the prompt's tokens are not a prefix
    of the full conversation's tokens (then no mask can be exact).
    """
    prompt_text = _render(tokenizer, prompt, generation_prompt=True)
    full_text = _render(tokenizer, [*prompt, completion], generation_prompt=False)
    if not full_text.startswith(prompt_text):
        raise DataValidationError(
            f"sample '{sample_id}': the chat template renders the prompt differently with and "
            "without the completion, so the completion cannot be masked; fix the chat template"
        )
    prompt_ids = _ids(tokenizer, prompt_text)
    full_ids = _ids(tokenizer, full_text)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise DataValidationError(
            f"sample '{sample_id}': prompt tokens are not a prefix of the conversation tokens "
            "(a BPE merge crosses the prompt/completion boundary); end the generation prompt "
            "with a special token"
        )
    mask = [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))
    return EncodedSample(full_ids, mask, len(prompt_ids))


def highlight_mask(tokenizer: Any, input_ids: Sequence[int], mask: Sequence[int]) -> str:
    """Render tokens, wrapping masked (trained-on) runs in ``[[ ]]`` for audit messages."""
    out: list[str] = []
    inside = False
    for tok, m in zip(input_ids, mask, strict=True):
        if m and not inside:
            out.append("[[")
            inside = True
        if not m and inside:
            out.append("]]")
            inside = False
        out.append(tokenizer.decode([tok], skip_special_tokens=False))
    if inside:
        out.append("]]")
    return "".join(out)


def _expected_calls(messages: Sequence[Message]) -> list[ToolCall]:
    return [c for m in messages for c in m.tool_calls]


def audit_sample(tokenizer: Any, sample: Sample) -> list[FormatProblem]:
    """Every check of the format gate on one sample; an empty list means compliant.

    1. every assistant tool call in the rendered conversation appears as
       ``<|python_tag|>{json}<|eom_id|>`` and parses back to the same call, in order;
    2. the start/end markers are single special tokens in the token ids;
    3. the completion mask covers exactly the final call's rendered span.
    """
    problems: list[FormatProblem] = []
    try:
        enc = encode_completion(
            tokenizer, sample.prompt_messages, sample.messages[-1], sample_id=sample.id
        )
    except DataValidationError as exc:
        return [FormatProblem(sample.id, str(exc), "")]
    rendered = ""  # filled in below only when something failed (decoding per token is slow)
    full_text = tokenizer.decode(enc.input_ids, skip_special_tokens=False)

    spans = re.findall(
        re.escape(TOOL_CALL_START) + r"(.*?)" + re.escape(TOOL_CALL_END), full_text, re.DOTALL
    )
    expected = _expected_calls(sample.messages)
    if len(spans) != len(expected):
        problems.append(
            FormatProblem(
                sample.id,
                f"rendered {len(spans)} tool-call spans; the messages hold {len(expected)} calls",
                rendered,
            )
        )
    for i, (span, want) in enumerate(zip(spans, expected, strict=False)):
        parsed = parse_tool_call(TOOL_CALL_START + span + TOOL_CALL_END)
        if parsed is None or parsed.mode != "strict" or parsed.call != want:
            got = None if parsed is None else parsed.call.canonical()
            problems.append(
                FormatProblem(
                    sample.id,
                    f"tool call #{i} renders as {span!r} which parses to {got}, "
                    f"not {want.canonical()}",
                    rendered,
                )
            )
    for marker in (TOOL_CALL_START, TOOL_CALL_END):
        tid = tokenizer.convert_tokens_to_ids(marker)
        if tid is None or tid == tokenizer.unk_token_id or tid not in enc.input_ids:
            problems.append(
                FormatProblem(sample.id, f"{marker} is not a single special token", rendered)
            )
    completion_text = tokenizer.decode(enc.completion_ids, skip_special_tokens=False)
    parsed_completion = parse_tool_call(completion_text)
    if (
        parsed_completion is None
        or parsed_completion.mode != "strict"
        or parsed_completion.call != sample.completion_call
    ):
        problems.append(
            FormatProblem(
                sample.id,
                f"loss mask covers {completion_text!r}, which is not exactly the final tool call "
                f"{sample.completion_call.canonical()} in <|python_tag|>{{json}}<|eom_id|> form",
                rendered,
            )
        )
    if problems:
        shown = highlight_mask(tokenizer, enc.input_ids, enc.completion_mask)
        problems = [FormatProblem(p.sample_id, p.problem, shown) for p in problems]
    return problems
