"""The codegen replay fixture: recorded from a real model, replayed exactly, drift is loud."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.factory import open_generator
from harness.backends.replay import ReplayGenerator, load_recordings, manifest_path, read_manifest
from harness.errors import ReplayMiss
from harness.evaluators.codegen import CodegenConfig, ModelSubject, StageRequest, run_codegen
from harness.evaluators.codegen_replay import record_codegen
from harness.evaluators.humaneval import load_tasks
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "fixtures" / "replay" / "codegen.jsonl"


@pytest.fixture(scope="module")
def local_sandbox() -> Iterator[Sandbox]:
    box = LocalSandbox()
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> object:
    import torch

    from harness.backends.hf import HFGenerator
    from trainers.tiny import TinyModelConfig, build_tiny_model

    torch.set_num_threads(1)
    path = build_tiny_model(
        TinyModelConfig(hidden_size=32, intermediate_size=64, corpus_snippets=20),
        out_dir=tmp_path_factory.getbasetemp() / "tiny",
    )
    return HFGenerator.from_pretrained(path, name="tiny-untrained")


def test_record_then_replay_reproduces_the_run(
    tiny_generator: object, local_sandbox: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "codegen.jsonl"
    manifest = record_codegen(
        tiny_generator,  # type: ignore[arg-type]
        model="tiny-untrained",
        out=out,
        sandbox=local_sandbox,
        tasks=3,
        deep=1,
        seed=5,
    )
    assert manifest["requests"] == 3 + 2 and manifest["samples"] == 16 + 2
    assert manifest["tasks"] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert "--phase codegen" in manifest["record_command"] and read_manifest(out) == manifest
    assert all(r.generation.lane == "real" for r in load_recordings(out))

    cfg = CodegenConfig(seed=5, deep_tasks=1)
    tasks = load_tasks(task_ids=manifest["tasks"])
    real = run_codegen(
        ModelSubject(tiny_generator, cfg),  # type: ignore[arg-type]
        tasks,
        local_sandbox,
        cfg,
        data_digest="d",
    )
    replay = open_generator("tiny-untrained", lane="replay", recording=out)
    replayed = run_codegen(ModelSubject(replay, cfg), tasks, local_sandbox, cfg, data_digest="d")
    assert replayed.lane == "replay" and real.lane == "real"
    assert [(s.raw_text, s.status) for t in replayed.tasks for s in t.samples] == [
        (s.raw_text, s.status) for t in real.tasks for s in t.samples
    ]  # the same texts, executed again in the sandbox with the same results
    # re-recording replaces the file rather than merging stale entries into it
    record_codegen(
        tiny_generator,  # type: ignore[arg-type]
        model="tiny-untrained",
        out=out,
        sandbox=local_sandbox,
        tasks=2,
        deep=1,
        seed=5,
    )
    assert len(load_recordings(out)) == 3 + 1  # the deep task: stages 0, 1, 4


def test_shipped_fixture_is_a_real_recording_of_the_embedded_model() -> None:
    manifest = read_manifest(FIXTURE)
    assert manifest_path(FIXTURE).is_file() and manifest["phase"] == "codegen"
    build = manifest["model"]["build"]
    assert build["kind"] == "tiny-code" and build["contamination"]["contaminated_items"] == 0
    recs = load_recordings(FIXTURE)
    assert {r.generation.lane for r in recs} == {"real"}  # recorded from a real backend
    assert {r.generation.model.digest() for r in recs} == {manifest["model"]["identity_digest"]}
    assert recs[0].generation.model.backend == "hf"
    assert 24 <= len(manifest["tasks"]) <= 64 and FIXTURE.stat().st_size < 1_000_000
    assert "harness replay record --phase codegen" in manifest["record_command"]


def _fixture_subject() -> tuple[ModelSubject, CodegenConfig, list[StageRequest]]:
    manifest = read_manifest(FIXTURE)
    cfg = CodegenConfig(seed=manifest["seed"], deep_tasks=manifest["deep_tasks"])
    tasks = load_tasks(task_ids=manifest["tasks"])
    subject = ModelSubject(ReplayGenerator(FIXTURE, model_name="tiny-code"), cfg)
    from harness.evaluators.codegen import _derived_seed

    stages = [StageRequest(t, 0, 1, _derived_seed(cfg.seed, t.task_id, 0)) for t in tasks]
    return subject, cfg, stages


def test_every_recorded_first_stage_replays() -> None:
    subject, _, stages = _fixture_subject()
    batches = subject.sample(stages)
    assert len(batches) == len(stages) and subject.lane == "replay"
    assert all(len(b.texts) == 1 and not b.cached for b in batches)


def test_a_changed_prompt_is_contract_drift(tmp_path: Path) -> None:
    """Edit one task's prompt: the replay lane refuses, naming the request and the fix."""
    subject, _, stages = _fixture_subject()
    edited = dataclasses.replace(stages[3].task, prompt=stages[3].task.prompt + "    # edited\n")
    stages[3] = dataclasses.replace(stages[3], task=edited)
    with pytest.raises(ReplayMiss) as err:
        subject.sample(stages)
    msg = str(err.value)
    assert f"request '{edited.task_id}#s0+1'" in msg and "its prompt changed since" in msg
    assert "Re-record with: harness replay record --phase codegen" in msg
    # a different harness seed is drift too (the samples would differ)
    reseeded = [dataclasses.replace(s, seed=s.seed + 1) for s in stages[:1]]
    with pytest.raises(ReplayMiss, match="its sampling changed"):
        subject.sample(reseeded)


def test_fixture_manifest_lines_are_valid_json() -> None:
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        json.loads(line)
