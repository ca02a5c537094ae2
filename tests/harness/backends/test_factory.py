"""open_generator: model spec strings → backends, cache and replay wiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import (
    CachingGenerator,
    GenerationRequest,
    HFGenerator,
    OpenAICompatGenerator,
    ReplayGenerator,
    SamplingParams,
    open_generator,
    record,
)
from harness.errors import BackendError


def test_directory_spec_gives_hf_and_cache_wraps(tiny_model_dir: Path, tmp_path: Path) -> None:
    gen = open_generator(tiny_model_dir)
    assert isinstance(gen, HFGenerator)
    cached = open_generator(tiny_model_dir, cache_dir=tmp_path / "c")
    assert isinstance(cached, CachingGenerator) and cached.identity == gen.identity
    assert isinstance(
        open_generator(tiny_model_dir, cache_dir=tmp_path, cache_mode="off"), HFGenerator
    )


def test_url_spec_and_errors(tmp_path: Path) -> None:
    gen = open_generator("http://127.0.0.1:9/v1#m")
    assert isinstance(gen, OpenAICompatGenerator) and gen.model == "m"
    with pytest.raises(BackendError, match="served model name"):
        open_generator("http://127.0.0.1:9/v1")
    with pytest.raises(BackendError, match="not a directory"):
        open_generator(tmp_path / "missing")
    with pytest.raises(BackendError, match="vLLM"):
        open_generator("vllm:some/model")
    with pytest.raises(BackendError, match="needs a recording"):
        open_generator("x", lane="replay")


def test_replay_lane(tiny_model_dir: Path, tmp_path: Path, hf_generator: HFGenerator) -> None:
    req = GenerationRequest(request_id="a", prompt="x", sampling=SamplingParams(max_tokens=3))
    record(hf_generator, [req], tmp_path / "r.jsonl")
    gen = open_generator(tiny_model_dir, lane="replay", recording=tmp_path / "r.jsonl")
    assert isinstance(gen, ReplayGenerator)
    assert gen.generate([req])[0].lane == "replay"
