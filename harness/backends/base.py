"""The contract every model backend speaks.

A suite never talks to transformers, an HTTP server or a recording directly: it
builds :class:`GenerationRequest` objects and hands them to a :class:`Generator`.
Every :class:`Generation` that comes back carries the backend's full
:class:`ModelIdentity` and the exact :class:`SamplingParams` used, so evidence
can be traced to weights, tokenizer and chat template, and so the cache and the
replay lane can key on *everything* that influences the output.

Inputs (params, messages, requests, identities) are frozen pydantic models: they
validate on construction and serialise canonically, which is what the
content-addressed keys hash.  ``request_id`` is deliberately *not* part of a
request's content key — two runs that ask the same thing under different ids
share a cache entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.errors import BackendError

__all__ = [
    "Generation",
    "GenerationRequest",
    "Generator",
    "Lane",
    "Latency",
    "Message",
    "ModelIdentity",
    "Role",
    "SamplingParams",
    "ToolCall",
    "canonical_json",
    "check_one_to_one",
    "sha256_hex",
]

Role = Literal["system", "user", "assistant", "tool"]
Lane = Literal["real", "replay", "control"]
FinishReason = Literal["stop", "length", "tool_call"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content ⇒ equal bytes ⇒ equal digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SamplingParams(_Frozen):
    """How to sample.  ``temperature == 0`` means greedy; ``seed`` makes sampling reproducible.

    ``n`` completions are produced per request.  ``stop`` strings end a
    completion and are not included in its text (OpenAI semantics).
    """

    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=128, ge=1, le=1_000_000)
    n: int = Field(default=1, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ToolCall(_Frozen):
    """One function call emitted by an assistant turn (HF/OpenAI ``tool_calls`` shape)."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(_Frozen):
    """One chat turn.  ``tool_calls`` only on assistant turns; ``tool`` turns carry results."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @model_validator(mode="after")
    def _tool_calls_only_on_assistant(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(
                f"tool_calls are only allowed on assistant messages, got role={self.role!r}; "
                "put tool results in a message with role='tool'"
            )
        return self

    def to_hf(self) -> dict[str, Any]:
        """The dict shape ``apply_chat_template`` and OpenAI chat endpoints expect."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return out


class GenerationRequest(_Frozen):
    """Exactly one of ``messages`` (chat) or ``prompt`` (raw completion), plus sampling params.

    ``tools`` are JSON-schema function specs forwarded to the chat template / server.
    """

    request_id: str = Field(min_length=1)
    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    sampling: SamplingParams = SamplingParams()

    @model_validator(mode="after")
    def _exactly_one_input(self) -> GenerationRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError(
                f"request {self.request_id!r}: give exactly one of messages= (chat) or "
                "prompt= (raw completion)"
            )
        if self.messages is not None and len(self.messages) == 0:
            raise ValueError(f"request {self.request_id!r}: messages= must not be empty")
        if self.tools and self.messages is None:
            raise ValueError(f"request {self.request_id!r}: tools= needs messages= (chat mode)")
        return self

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def content_dict(self) -> dict[str, Any]:
        """Everything that influences the output except the sampling params and the id."""
        return {
            "messages": None
            if self.messages is None
            else [m.model_dump(mode="json") for m in self.messages],
            "prompt": self.prompt,
            "tools": list(self.tools),
        }

    def content_digest(self) -> str:
        return sha256_hex(canonical_json(self.content_dict()))


class ModelIdentity(_Frozen):
    """Everything that determines what a backend will say, as far as the backend can know it.

    ``weights_digest`` / ``tokenizer_digest`` / ``chat_template_digest`` are
    sha256 hex digests where computable (local checkpoints) and ``None`` where
    not (a hosted API): then ``revision`` and ``endpoint`` are the best we have
    and the report shows that the identity is weaker.
    """

    backend: str = Field(min_length=1)
    name: str = Field(min_length=1)
    revision: str | None = None
    weights_digest: str | None = None
    tokenizer_digest: str | None = None
    chat_template_digest: str | None = None
    dtype: str | None = None
    endpoint: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    def digest(self) -> str:
        return sha256_hex(canonical_json(self.model_dump(mode="json")))

    @property
    def fully_pinned(self) -> bool:
        """True when weights, tokenizer and template are all pinned by content digest."""
        return None not in (self.weights_digest, self.tokenizer_digest, self.chat_template_digest)


class Latency(_Frozen):
    """Wall-clock seconds the caller waited for this request (``ttft_s`` where observable)."""

    total_s: float = Field(ge=0.0)
    ttft_s: float | None = Field(default=None, ge=0.0)


class Generation(_Frozen):
    """The answer to one request: ``n`` texts with their finish reasons and token counts.

    ``lane`` says where it came from (``real`` backend or ``replay`` recording);
    ``cached`` is True when the on-disk cache answered — then ``latency`` is the
    latency recorded when it was first generated, so latency gates must not use
    cached generations (evaluators check ``cached``).
    """

    request_id: str
    texts: tuple[str, ...]
    finish_reasons: tuple[FinishReason, ...]
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: tuple[int, ...] = ()
    latency: Latency
    model: ModelIdentity
    sampling: SamplingParams
    lane: Lane = "real"
    cached: bool = False

    @model_validator(mode="after")
    def _lengths_agree(self) -> Generation:
        n = len(self.texts)
        if len(self.finish_reasons) != n or (
            self.completion_tokens and len(self.completion_tokens) != n
        ):
            raise ValueError(
                f"generation {self.request_id!r}: texts ({n}), finish_reasons "
                f"({len(self.finish_reasons)}) and completion_tokens "
                f"({len(self.completion_tokens)}) must have equal lengths"
            )
        if n != self.sampling.n:
            raise ValueError(
                f"generation {self.request_id!r}: {n} texts but sampling.n={self.sampling.n}"
            )
        return self

    @property
    def text(self) -> str:
        """The first (for ``n == 1`` the only) completion."""
        return self.texts[0]


@runtime_checkable
class Generator(Protocol):
    """A model backend.  ``generate`` returns one :class:`Generation` per request, in order.

    Implementations must never drop or duplicate a request: the result list has
    the same length and request ids as the input, or the call raises
    :class:`harness.errors.BackendError`.
    """

    @property
    def identity(self) -> ModelIdentity: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]: ...


def check_one_to_one(
    requests: Sequence[GenerationRequest], generations: Sequence[Generation], *, backend: str
) -> None:
    """Raise :class:`BackendError` unless ``generations`` answers ``requests`` exactly, in order.

    Every backend calls this before returning: a lost or duplicated sample would
    silently bias an estimate, so it is a hard error instead.
    """
    if len(generations) != len(requests):
        raise BackendError(
            f"{backend}: got {len(generations)} generations for {len(requests)} requests "
            "(a sample was lost or duplicated)"
        )
    for req, gen in zip(requests, generations, strict=True):
        if gen.request_id != req.request_id or len(gen.texts) != req.sampling.n:
            raise BackendError(
                f"{backend}: generation for request {req.request_id!r} came back as "
                f"{gen.request_id!r} with {len(gen.texts)} texts (expected {req.sampling.n})"
            )
