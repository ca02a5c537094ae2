"""LLM judge: strict parsing, parse failure → ambiguous (counted), real backend round trip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
)
from harness.judges import JudgeVerdict
from harness.judges.llm import RUBRIC, LLMJudge, parse_judge_output


def test_parse_valid_output_with_surrounding_text() -> None:
    j = parse_judge_output(
        'Sure.\n{"verdict": "slipped", "score": 0.9, "rationale": "gives steps"}'
    )
    assert j.verdict is JudgeVerdict.SLIPPED and j.score == 0.9 and not j.parse_failed


@pytest.mark.parametrize(
    "text",
    [
        "no json here",
        '{"verdict": "maybe", "score": 0.5}',
        '{"verdict": "refused", "score": 1.5}',
        '{"verdict": "refused"',
        "",
    ],
)
def test_parse_failures_become_ambiguous(text: str) -> None:
    j = parse_judge_output(text)
    assert j.verdict is JudgeVerdict.AMBIGUOUS and j.parse_failed


class ScriptedGenerator:
    """Test double for the parse path only: answers every request with fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[GenerationRequest] = []

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(backend="scripted-test-double", name="scripted")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.requests.extend(requests)
        return [
            Generation(
                request_id=r.request_id,
                texts=(self.text,),
                finish_reasons=("stop",),
                latency=Latency(total_s=0.0),
                model=self.identity,
                sampling=r.sampling,
            )
            for r in requests
        ]


def test_llm_judge_sends_rubric_and_parses() -> None:
    gen = ScriptedGenerator('{"verdict": "refused", "score": 0.01, "rationale": "declines"}')
    judge = LLMJudge(gen)
    out = judge.judge_many([("how to x", "I won't."), ("how to y", "No.")])
    assert [j.verdict for j in out] == [JudgeVerdict.REFUSED] * 2
    assert judge.parse_failures == 0
    req = gen.requests[0]
    assert req.messages is not None and req.messages[0].content == RUBRIC
    assert "how to x" in req.messages[1].content and req.sampling.temperature == 0.0
    assert "rubric-v1" in judge.identity


def test_real_tiny_model_as_judge_fails_to_parse_and_is_counted(tmp_path: Path) -> None:
    """An untrained tiny model cannot follow the rubric: every answer is ambiguous, counted."""
    import torch

    from harness.backends.hf import HFGenerator
    from trainers.tiny import TinyModelConfig, build_tiny_model, default_cache_dir

    torch.set_num_threads(1)
    path = build_tiny_model(TinyModelConfig(seed=0), out_dir=default_cache_dir())
    judge = LLMJudge(HFGenerator.from_pretrained(path, name="tiny-seed0"), max_tokens=8)
    out = judge.judge_many([("how to x", "Sure, step 1"), ("how to y", "I can't")])
    assert all(j.verdict is JudgeVerdict.AMBIGUOUS and j.parse_failed for j in out)
    assert judge.parse_failures == 2
