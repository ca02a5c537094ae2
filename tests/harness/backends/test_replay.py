"""Replay lane: hits come back labelled `replay`; misses name the key and the record command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
    SamplingParams,
)
from harness.backends.replay import (
    ReplayGenerator,
    load_requests,
    manifest_path,
    read_manifest,
    record,
    recording_key,
)
from harness.errors import DataValidationError, ReplayMiss

IDENT = ModelIdentity(
    backend="test",
    name="m",
    weights_digest="w",
    tokenizer_digest="t",
    chat_template_digest="c",
    dtype="float32",
)


class CountingGenerator:
    """Deterministic in-process backend (answers are a function of the request)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def identity(self) -> ModelIdentity:
        return IDENT

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.calls += [r.request_id for r in requests]
        return [
            Generation(
                request_id=r.request_id,
                texts=tuple(
                    f"{r.content_digest()[:8]}-{r.sampling.seed}-{i}" for i in range(r.sampling.n)
                ),
                finish_reasons=("stop",) * r.sampling.n,
                latency=Latency(total_s=0.5),
                model=IDENT,
                sampling=r.sampling,
            )
            for r in requests
        ]


def _reqs() -> list[GenerationRequest]:
    return [
        GenerationRequest(
            request_id=f"r{i}",
            prompt=f"def f{i}():",
            sampling=SamplingParams(max_tokens=8, n=1 + i % 2),
        )
        for i in range(4)
    ]


def test_record_then_replay_hits_are_labelled(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    inner = CountingGenerator()
    assert record(inner, _reqs(), rec, source="models/x") == 4
    replay = ReplayGenerator(rec)
    assert replay.identity == IDENT and len(replay) == 4
    renamed = [r.model_copy(update={"request_id": "n" + r.request_id}) for r in _reqs()]
    out = replay.generate(renamed)
    real = inner.generate(_reqs())
    assert [g.texts for g in out] == [g.texts for g in real]
    assert all(g.lane == "replay" and g.request_id.startswith("n") for g in out)


def test_miss_names_key_and_record_command(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    record(CountingGenerator(), _reqs(), rec, source="models/x")
    changed = _reqs()[0].model_copy(update={"sampling": SamplingParams(max_tokens=8, seed=9)})
    with pytest.raises(ReplayMiss) as err:
        ReplayGenerator(rec).generate([changed])
    msg = str(err.value)
    assert "request 'r0'" in msg and '"seed":9' in msg
    assert f"harness replay record --model models/x --requests <requests.jsonl> --out {rec}" in msg


def test_other_identity_misses(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    record(CountingGenerator(), _reqs(), rec)
    other = IDENT.model_copy(update={"weights_digest": "different"})
    with pytest.raises(ReplayMiss, match="replay miss"):
        ReplayGenerator(rec, identity=other).generate(_reqs()[:1])
    with pytest.raises(ReplayMiss, match="cannot choose a model identity"):
        ReplayGenerator(rec, model_name="nope")


def test_recording_merges_and_detects_tampering(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    record(CountingGenerator(), _reqs()[:2], rec)
    assert record(CountingGenerator(), _reqs()[1:], rec) == 4
    lines = rec.read_text().splitlines()
    row = json.loads(lines[0])
    row["generation"]["sampling"]["seed"] = 99
    row["request"]["sampling"]["seed"] = 99
    rec.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(DataValidationError, match=r"rec.jsonl:1: field 'key'"):
        ReplayGenerator(rec)
    with pytest.raises(ReplayMiss, match="does not exist"):
        ReplayGenerator(tmp_path / "missing.jsonl")


def test_load_requests_errors_name_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "reqs.jsonl"
    f.write_text(
        '{"request_id": "a", "prompt": "x"}\n'
        '{"request_id": "b", "sampling": {"n": 0}, "prompt": "y"}\n'
    )
    with pytest.raises(DataValidationError, match=r"reqs.jsonl:2: field sampling.n"):
        load_requests(f)
    f.write_text('{"request_id": "a", "prompt": "x"}\n{"request_id": "a", "prompt": "y"}\n')
    with pytest.raises(DataValidationError, match="duplicate value 'a'"):
        load_requests(f)


def test_changed_request_is_named_with_what_changed_and_the_manifest_command(
    tmp_path: Path,
) -> None:
    rec = tmp_path / "codegen.jsonl"
    record(CountingGenerator(), _reqs(), rec, source="models/x")
    command = "harness replay record --phase codegen --model models/x --out codegen.jsonl"
    manifest_path(rec).write_text(json.dumps({"record_command": command}))
    assert manifest_path(rec).name == "codegen.manifest.json"
    assert read_manifest(rec) == {"record_command": command}
    edited = _reqs()[1].model_copy(update={"prompt": "def f1(): # edited"})
    with pytest.raises(ReplayMiss) as err:
        ReplayGenerator(rec).generate([edited])
    msg = str(err.value)
    assert "request 'r1'" in msg and "its prompt changed since" in msg and command in msg
    new = GenerationRequest(request_id="brand-new", prompt="x")
    with pytest.raises(ReplayMiss, match=r"never recorded.*Re-record with: harness replay"):
        ReplayGenerator(rec).generate([new])


def test_a_directory_serves_every_recording_in_it(tmp_path: Path) -> None:
    record(CountingGenerator(), _reqs()[:2], tmp_path / "a.jsonl")
    record(CountingGenerator(), _reqs()[2:], tmp_path / "b.jsonl")
    replay = ReplayGenerator(tmp_path)
    assert len(replay) == 4 and all(g.lane == "replay" for g in replay.generate(_reqs()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReplayMiss, match="holds no"):
        ReplayGenerator(tmp_path / "empty")


def test_recording_key_digests_identity_request_and_sampling_only() -> None:
    """Unlike the cache key, it does not move when the serving code or libraries change."""
    req = _reqs()[0]
    key = recording_key(IDENT, req)
    assert key == recording_key(IDENT, req.model_copy(update={"request_id": "other"}))
    assert key != recording_key(IDENT, req.model_copy(update={"prompt": "y"}))
    assert key != recording_key(
        IDENT, req.model_copy(update={"sampling": SamplingParams(max_tokens=8, seed=1)})
    )
    assert key != recording_key(IDENT.model_copy(update={"weights_digest": "v"}), req)
