"""vLLM offline backend: request shaping and one engine call per batch, without vLLM installed.

A stand-in ``vllm`` module (``SamplingParams`` records its arguments) and a
stand-in ``LLM`` engine (records each ``generate`` call) stand where vLLM
would; the shaping under test is ours, not vLLM's.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import GenerationRequest, Message, SamplingParams
from harness.backends.vllm import (
    VLLMGenerator,
    resolve_weights_digest,
    shape_requests,
    vllm_available,
)
from harness.errors import BackendError


class FakeTokenizer:
    """Characters → ids; a chat template that joins ``role: content`` lines."""

    chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"

    def __call__(self, text: str, *, add_special_tokens: bool) -> dict[str, list[int]]:
        ids = [ord(c) for c in text]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: Any,
        add_generation_prompt: bool,
        tokenize: bool,
    ) -> str:
        assert add_generation_prompt and not tokenize
        head = f"tools={len(tools)}\n" if tools else ""
        return head + "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def get_vocab(self) -> dict[str, int]:
        return {"a": 97}


@dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class FakeResult:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]


@dataclass
class FakeEngine:
    calls: list[tuple[list[dict[str, list[int]]], list[Any]]] = field(default_factory=list)
    llm_engine: Any = field(
        default_factory=lambda: types.SimpleNamespace(
            model_config=types.SimpleNamespace(dtype="torch.bfloat16")
        )
    )

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(
        self, prompts: list[dict[str, list[int]]], params: list[Any], *, use_tqdm: bool
    ) -> list[FakeResult]:
        self.calls.append((prompts, params))
        return [
            FakeResult(
                p["prompt_token_ids"],
                [FakeCompletion(f"out{i}.{j}", [5, 6]) for j in range(sp.kw["n"])],
            )
            for i, (p, sp) in enumerate(zip(prompts, params, strict=True))
        ]


class FakeSamplingParams:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("vllm")
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)


def _requests() -> list[GenerationRequest]:
    return [
        GenerationRequest(
            request_id="p", prompt="hi", sampling=SamplingParams(max_tokens=4, seed=7)
        ),
        GenerationRequest(
            request_id="c",
            messages=(Message(role="user", content="yo"),),
            sampling=SamplingParams(temperature=0.7, top_p=0.9, n=2, stop=("\n",), seed=3),
        ),
    ]


def test_shape_requests_renders_prompts_and_keeps_per_request_sampling() -> None:
    prompts, kwargs = shape_requests(FakeTokenizer(), _requests())
    assert prompts[0] == {"prompt_token_ids": [1, ord("h"), ord("i")]}  # BOS once, for text
    chat_ids = prompts[1]["prompt_token_ids"]
    assert chat_ids[0] != 1 and "".join(map(chr, chat_ids)) == "user: yo\nassistant:"
    assert kwargs[0] == {
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 4,
        "seed": 7,
        "stop": None,
    }
    assert kwargs[1]["n"] == 2 and kwargs[1]["seed"] == 3 and kwargs[1]["stop"] == ["\n"]


def test_all_prompts_of_a_call_go_in_one_generate(fake_vllm: None) -> None:
    engine = FakeEngine()
    gen = VLLMGenerator("m", engine=engine, weights_digest="w" * 64)
    out = gen.generate(_requests())
    assert len(engine.calls) == 1  # one engine call for the whole batch
    prompts, params = engine.calls[0]
    assert len(prompts) == 2 and [p.kw["seed"] for p in params] == [7, 3]
    assert [g.request_id for g in out] == ["p", "c"]
    assert out[1].texts == ("out1.0", "out1.1") and out[1].completion_tokens == (2, 2)
    assert out[0].prompt_tokens == 3 and out[0].model.weights_digest == "w" * 64
    assert gen.identity.dtype == "bfloat16" and gen.generate([]) == []


def test_identity_digests_the_weights(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, content in ((a, b"one"), (b, b"two")):
        d.mkdir()
        (d / "model.safetensors").write_bytes(content)
    assert resolve_weights_digest(str(a)) != resolve_weights_digest(str(b))
    ga = VLLMGenerator(str(a), engine=FakeEngine())
    gb = VLLMGenerator(str(b), engine=FakeEngine())
    assert ga.identity.weights_digest == resolve_weights_digest(str(a))
    assert ga.identity.digest() != gb.identity.digest()  # same tokenizer/template, other weights


def test_unresolvable_weights_and_missing_vllm_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="local checkpoint directory"):
        resolve_weights_digest("no-such-org/no-such-model-xyz")
    if not vllm_available():
        with pytest.raises(BackendError, match="gate-harness\\[vllm\\]"):
            VLLMGenerator("m")
