"""Chat prompts and targets of the code-edit SFT stages (brief note 003 §2–§3).

Every stage renders a record as ``[system]`` editing behaviour, ``[user]``
instruction + pre-code, ``[assistant]`` target, through the tokenizer's own
chat template (TRL's conversational prompt/completion format, so the loss
covers the assistant turn only):

* Stage 0 (``post_code``) — the target is the record's ``post_code``, verbatim;
* Stage 1 (``action``) — the target is the record's ast-grep action as canonical
  rule YAML (:meth:`AstGrepAction.rule_yaml`), the form the validator applies
  and the SRL reward compares.

The same functions build the evaluation prompts, so a model is judged on
exactly the prompt shape it was trained on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from harness.data.code_edit.action import parse_action
from harness.data.code_edit.schema import NormalizedRecord
from harness.errors import DataValidationError

__all__ = [
    "SYSTEM_ACTION",
    "SYSTEM_POST_CODE",
    "EditState",
    "Target",
    "completion_text",
    "messages",
    "prompt_messages",
    "target_text",
]


class Target(StrEnum):
    """What a stage teaches the model to emit."""

    POST_CODE = "post_code"
    ACTION = "action"


SYSTEM_POST_CODE = (
    "You edit code. Apply the requested change to the code and answer with the complete "
    "edited code only."
)
SYSTEM_ACTION = (
    "You edit code with ast-grep. Answer with one ast-grep rule in YAML (language, rule, "
    "fix) that performs the requested change."
)


class EditState(Protocol):
    """What a prompt shows: a ``NormalizedRecord`` or a verified SRL step both have it."""

    @property
    def instruction(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def pre_code(self) -> str: ...


def prompt_messages(record: EditState, target: Target) -> list[dict[str, str]]:
    """``[system, user]`` turns for ``record`` (what the model sees at generation time)."""
    system = SYSTEM_POST_CODE if target is Target.POST_CODE else SYSTEM_ACTION
    user = f"{record.instruction}\n\n```{record.language}\n{record.pre_code}```"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def target_text(record: NormalizedRecord, target: Target) -> str:
    """The assistant turn the stage trains towards (raises when the record has none)."""
    if target is Target.POST_CODE:
        return record.post_code
    if record.action is None:
        raise DataValidationError(
            f"record {record.id}: Stage 1 (target 'action') needs a record with an action; "
            "select rows whose `action` field is set"
        )
    return parse_action(record.action).rule_yaml()


def messages(record: NormalizedRecord, target: Target) -> dict[str, Any]:
    """One TRL conversational prompt/completion row."""
    return {
        "prompt": prompt_messages(record, target),
        "completion": [{"role": "assistant", "content": target_text(record, target)}],
    }


def completion_text(completion: Any) -> str:
    """The text of a TRL completion (a string, or a list of assistant messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)
