"""The ast-grep action schema: a rule (YAML with ``fix``) or the equivalent CLI call.

A model's action is hostile input, so parsing is strict: unknown top-level
fields, a missing ``fix``, a rule without any matcher or a language ast-grep
does not know are errors that name the field.  Both published forms normalise
to one :class:`AstGrepAction`:

* rule YAML — ``id``, ``language``, ``rule`` (a mapping: ``pattern``, ``kind``,
  ``regex``, ``inside``, ``has``, ``all``, ``any``, ``not`` …), ``fix`` and
  optional ``constraints``, as ``ast-grep scan -r rule.yml`` reads it;
* CLI — ``ast-grep run -p PATTERN -r REWRITE -l LANG`` (``sg`` also accepted),
  which is a rule whose only matcher is ``pattern``.

:meth:`AstGrepAction.rule_yaml` renders the canonical YAML (sorted keys) that
the reward compares and the validator hands to the binary.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.data.code_edit.schema import normalize_language
from harness.errors import DataValidationError

__all__ = ["MAX_ACTION_CHARS", "RULE_KEYS", "ActionError", "AstGrepAction", "parse_action"]

#: longest action text accepted (a real rule is a few hundred characters; a model that
#: rambles, or a payload meant to exhaust the parser, is an invalid action, not a crash)
MAX_ACTION_CHARS = 16_384

#: matcher keys of an ast-grep rule object (atomic, relational, composite, utility)
RULE_KEYS = frozenset(
    {"pattern", "kind", "regex", "nthChild", "range", "inside", "has", "precedes", "follows"}
    | {"all", "any", "not", "matches"}
)
_LANGUAGES = frozenset(
    {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "csharp"}
    | {"kotlin", "ruby", "swift", "lua", "php", "scala", "bash", "html", "css", "json", "yaml"}
)


class ActionError(DataValidationError):
    """An action does not parse; the message names the field and the fix."""


class AstGrepAction(BaseModel):
    """One normalised rewrite: match ``rule`` in ``language`` code, replace with ``fix``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default="edit", min_length=1)
    language: str
    rule: dict[str, Any]
    fix: str
    constraints: dict[str, Any] | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        lang = normalize_language(value)
        lang = "bash" if lang == "shell" else lang
        if lang not in _LANGUAGES:
            raise ValueError(f"unknown language {value!r}; one of {', '.join(sorted(_LANGUAGES))}")
        return lang

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - RULE_KEYS)
        if unknown:
            raise ValueError(f"unknown rule key(s) {unknown}; known: {sorted(RULE_KEYS)}")
        if not value:
            raise ValueError("rule is empty; give at least a 'pattern'")
        pattern = value.get("pattern")
        if pattern is not None and (not isinstance(pattern, str | dict) or not pattern):
            raise ValueError("rule.pattern must be a non-empty string (or a pattern object)")
        return value

    def rule_yaml(self) -> str:
        """Canonical rule YAML (sorted keys, ``constraints`` only when set)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "language": self.language,
            "rule": self.rule,
            "fix": self.fix,
        }
        if self.constraints:
            doc["constraints"] = self.constraints
        return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True)

    def cli(self) -> str | None:
        """``ast-grep run`` equivalent when the rule is a bare string pattern, else ``None``."""
        if (
            set(self.rule) != {"pattern"}
            or self.constraints
            or not isinstance(self.rule["pattern"], str)
        ):
            return None
        args = ["ast-grep", "run", "-p", self.rule["pattern"], "-r", self.fix, "-l", self.language]
        return shlex.join(args)


def _from_cli(cli: str) -> dict[str, Any]:
    try:
        argv = shlex.split(cli)
    except ValueError as exc:
        raise ActionError(f"field 'cli': cannot split the command ({exc}); quote it") from exc
    if len(argv) < 2 or argv[0] not in {"ast-grep", "sg"} or argv[1] != "run":
        raise ActionError("field 'cli': must start with 'ast-grep run' (or 'sg run')")
    opts: dict[str, str] = {}
    names = {"-p": "pattern", "--pattern": "pattern", "-r": "fix", "--rewrite": "fix"}
    names |= {"-l": "language", "--lang": "language"}
    it = iter(argv[2:])
    for arg in it:
        if arg not in names:
            raise ActionError(f"field 'cli': unsupported argument {arg!r}; use -p, -r and -l")
        value = next(it, None)
        if value is None:
            raise ActionError(f"field 'cli': {arg} needs a value")
        opts[names[arg]] = value
    for need in ("pattern", "fix", "language"):
        if need not in opts:
            raise ActionError(f"field 'cli': missing the {need} option")
    return {"language": opts["language"], "rule": {"pattern": opts["pattern"]}, "fix": opts["fix"]}


class _NoAliasLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses anchors/aliases: a rule never needs them, and nested
    aliases ("billion laughs") expand to exponentially large structures on traversal."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in an action", event.start_mark
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    if len(text) > MAX_ACTION_CHARS:
        raise ActionError(
            f"action: {len(text)} characters, above the limit of {MAX_ACTION_CHARS}; "
            "emit one short rule document"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        raise ActionError(f"action: not valid YAML ({exc}); emit one rule document") from exc
    except RecursionError as exc:
        raise ActionError("action: nested too deeply to parse; emit a flat rule") from exc
    except Exception as exc:  # hostile text: any constructor failure is this action's own
        # PyYAML's safe constructors raise plain ValueError/AttributeError on scalars its
        # resolver matched but cannot build (an int past Python's 4300-digit limit,
        # ``2001-13-01``, ``!!timestamp abc``); one such action must not stop the batch
        raise ActionError(
            f"action: a value cannot be read ({type(exc).__name__}: {str(exc)[:120]}); "
            "quote scalars that are not plain strings"
        ) from exc


def parse_action(action: str | Mapping[str, Any]) -> AstGrepAction:
    """Parse rule YAML text, a rule mapping, or ``{"cli": "..."}``; errors name the field.

    Text is untrusted model output: it is size-capped (:data:`MAX_ACTION_CHARS`), read
    without YAML aliases, and every failure is an :class:`ActionError`, never another
    exception type.
    """
    raw: Any = _load_yaml(action) if isinstance(action, str) else action
    if not isinstance(raw, Mapping):
        raise ActionError(f"action: expected a mapping, got {type(raw).__name__}")
    data = dict(raw)
    if set(data) == {"cli"}:
        if not isinstance(data["cli"], str):
            raise ActionError("field 'cli': must be a string")
        data = _from_cli(data["cli"])
    for need in ("language", "rule", "fix"):
        if need not in data:
            raise ActionError(f"field '{need}' is missing; an ast-grep action needs {need}")
    try:
        parsed = AstGrepAction.model_validate(data)
        parsed.rule_yaml()  # what the validator hands the binary must render, here or never
        return parsed
    except RecursionError as exc:
        raise ActionError("field 'rule': nested too deeply; emit a flat rule") from exc
    except yaml.YAMLError as exc:
        raise ActionError(f"field 'rule': cannot be written back as YAML ({exc})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<action>"
        raise ActionError(f"field '{field}': {err['msg']}") from exc
