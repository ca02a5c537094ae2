"""Code-edit phase fixtures: the embedded data set, built once per session, and controls.

``code_edit_data`` runs the embedded generator (real ast-grep binary) into a
session directory — about 15–35 s on two busy cores — and the gates read what
it wrote.  The controls are copies of that directory with one defect planted
(a blank instruction; a train row copied into test), so each gate is shown to
FAIL on the defect it exists to catch.

``srl_filtered`` runs the program teacher on the train/dev records and filters its
raw trajectories by sandbox verification, once per session: the same clean SRL
dataset is the ``srl_verified_steps`` gate's subject and the SRL stage's training
data (``code_edit_trained`` passes its directory to the pipeline).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.atomic import atomic_write_text
from harness.backends.base import Generator
from harness.backends.hf import weights_digest_of_dir
from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.errors import HarnessError
from harness.evaluators.code_edit import load_rows
from harness.evaluators.code_edit_actions import ActionSubject, heldout_action_records
from harness.evaluators.code_edit_models import edit_requests, generate_texts
from harness.evaluators.code_edit_trajectories import FilterReport, filter_trajectories
from harness.settings import env_option
from sandbox.base import Sandbox
from trainers.code_edit.generate import build_embedded
from trainers.code_edit.pipeline import (
    CodeEditPipelineConfig,
    PipelineArtifacts,
    load_pipeline_config,
    train_pipeline,
)
from trainers.code_edit.teacher import ProgramTeacher, Teacher, propose_steps, write_raw


@pytest.fixture(scope="session")
def code_edit_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = env_option("HARNESS_CODE_EDIT_DATA")
    if given:  # a user's ingested root (CommitPackFT, CanItEdit, ...): read, never rebuilt
        return Path(given).expanduser()
    root = tmp_path_factory.mktemp("code_edit") / "processed"
    build_embedded(root=root, seed=0)
    return root


def _first_row(root: Path, split: Split) -> tuple[Path, dict[str, object]]:
    path = sorted((root / split.value).glob("*.jsonl"))[0]
    return path, json.loads(path.read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture(scope="session")
def invalid_row_control(code_edit_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data plus one test row whose instruction is blank."""
    root = tmp_path_factory.mktemp("code_edit_invalid") / "processed"
    shutil.copytree(code_edit_data, root)
    path, row = _first_row(root, Split.TEST)
    blank = json.dumps({**row, "id": "control/blank", "instruction": " "})
    atomic_write_text(path, path.read_text(encoding="utf-8") + blank + "\n")
    return root


@pytest.fixture(scope="session")
def leaky_control(code_edit_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data plus a copy of one train row filed (validly) under test."""
    root = tmp_path_factory.mktemp("code_edit_leaky") / "processed"
    shutil.copytree(code_edit_data, root)
    _, row = _first_row(root, Split.TRAIN)
    copy = NormalizedRecord.model_validate({**row, "id": "control/leak", "split": "test"})
    atomic_write_text(root / "test" / "control.jsonl", copy.model_dump_json() + "\n")
    return root


# --------------------------------------------------------------------------- SRL data


@pytest.fixture(scope="session")
def astgrep_sandbox() -> Iterator[Sandbox]:
    """A Docker pool on the ast-grep sibling image (built offline once if missing)."""
    from sandbox.astgrep_image import ensure_astgrep_image
    from sandbox.docker_pool import DockerSandbox

    box = DockerSandbox(image=ensure_astgrep_image())
    try:
        yield box
    finally:
        box.close()


SRLFilter = Callable[[Teacher], FilterReport]


@pytest.fixture(scope="session")
def run_srl_filter(
    code_edit_data: Path, astgrep_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> SRLFilter:
    """``run(teacher)``: the teacher's raw trajectories on the train/dev records, then the
    sandbox filter (publishes ``<work>/srl/{train,dev}.jsonl`` + ``stats.json``)."""
    rows = load_rows(code_edit_data)
    records = [r for r in rows if r.split is not Split.TEST]

    def run(teacher: Teacher) -> FilterReport:
        work = tmp_path_factory.mktemp("srl_" + teacher.name.replace(":", "_"))
        raw = write_raw(propose_steps(teacher, records), work / "raw" / "steps.jsonl")
        return filter_trajectories(raw, rows, out_dir=work / "srl", sandbox=astgrep_sandbox)

    return run


@pytest.fixture(scope="session")
def srl_filtered(run_srl_filter: SRLFilter) -> FilterReport:
    """The program teacher's trajectories, sandbox-verified: the clean SRL dataset."""
    return run_srl_filter(ProgramTeacher())


# --------------------------------------------------------------------------- trained models


@dataclass(frozen=True)
class TrainedCodeEdit:
    """The trained pipeline and its held-out completions (record id → text per subject).

    ``srl_subjects[i]`` names the GRPO run at seed ``artifacts.srl_seeds[i]``
    (``srl_seed<N>``); ``stage1_cont`` is the data-matched continued-SFT arm.
    """

    artifacts: PipelineArtifacts
    config: CodeEditPipelineConfig
    heldout_edit: list[NormalizedRecord]
    heldout_action: list[NormalizedRecord]
    post_code: dict[str, dict[str, str]]
    actions: dict[str, dict[str, str]]
    model_digests: dict[str, str]
    srl_subjects: tuple[str, ...]

    def srl_artifact(self, subject: str) -> Any:
        """The SRL run behind ``subject`` (one of ``srl_subjects``)."""
        return self.artifacts.srl_runs[self.srl_subjects.index(subject)]


def _pipeline_config() -> CodeEditPipelineConfig:
    path = env_option("HARNESS_CODE_EDIT_CONFIG")
    return load_pipeline_config(path) if path else CodeEditPipelineConfig()


def _generator(path: Path, name: str, cache_root: Path, no_cache: bool) -> Generator:
    from harness.backends.cache import CacheMode, CachingGenerator
    from harness.backends.hf import HFGenerator

    inner = HFGenerator.from_pretrained(path, name=name, batch_size=16)
    mode = CacheMode.REFRESH if no_cache else CacheMode.USE
    return CachingGenerator(inner, cache_root / "generations", mode=mode)


@pytest.fixture(scope="session")
def code_edit_trained(
    code_edit_data: Path,
    srl_filtered: FilterReport,
    model_source: Any,
    cache_root: Path,
    no_cache: bool,
) -> TrainedCodeEdit:
    """Stage 0, Stage 1, SRL on every seed and the continued-SFT arm trained (or reused by
    cache key) on the train split — SRL and the arm on the filtered SRL dataset's — and
    every subject's greedy completions on the held-out test split (generation cache)."""
    if model_source.kind == "endpoint":
        pytest.skip("code_edit training needs a local checkpoint, not an endpoint (--model DIR)")
    import torch

    torch.set_num_threads(1)  # two cores shared by xdist workers and the sandbox
    cfg = _pipeline_config()
    rows = load_rows(code_edit_data)
    base = Path(model_source.location)
    arts = train_pipeline(
        rows,
        base_dir=base,
        srl_data=Path(srl_filtered.out_dir),
        config=cfg,
        progress=lambda _m: None,
    )
    test = [r for r in rows if r.split is Split.TEST]
    with_action = heldout_action_records(rows)
    srl_subjects = tuple(f"srl_seed{s}" for s in arts.srl_seeds)
    paths = {
        "base": base,
        "stage0_sft": arts.stage0.path / "model",
        "stage1_sft": arts.stage1.path / "model",
        **{n: a.path / "model" for n, a in zip(srl_subjects, arts.srl_runs, strict=True)},
        "stage1_cont": arts.continued_sft.path / "model",
    }
    post: dict[str, dict[str, str]] = {}
    acts: dict[str, dict[str, str]] = {}
    for name in ("base", "stage0_sft"):
        gen = _generator(paths[name], f"code-edit-{name}", cache_root, no_cache)
        reqs = edit_requests(test, Target.POST_CODE, max_tokens=cfg.eval_max_tokens_post_code)
        post[name] = generate_texts(gen, reqs)
    for name in ("stage1_sft", *srl_subjects, "stage1_cont"):
        gen = _generator(paths[name], f"code-edit-{name}", cache_root, no_cache)
        reqs = edit_requests(with_action, Target.ACTION, max_tokens=cfg.eval_max_tokens_action)
        acts[name] = generate_texts(gen, reqs)
    digests = {n: weights_digest_of_dir(p) for n, p in paths.items()}
    return TrainedCodeEdit(arts, cfg, test, with_action, post, acts, digests, srl_subjects)


@pytest.fixture(scope="session")
def stage1_action_subject(code_edit_trained: TrainedCodeEdit) -> ActionSubject:
    """The Stage 1 SFT model as an ``ActionSubject`` for ``action_parse_rate`` /
    ``action_success_rate``: its greedy completion for each held-out record (generated
    once in ``code_edit_trained``, from the Stage 1 prompt shape)."""
    texts = code_edit_trained.actions["stage1_sft"]

    def subject(records: Sequence[NormalizedRecord]) -> list[str]:
        missing = [r.id for r in records if r.id not in texts]
        if missing:
            raise HarnessError(
                f"Stage 1 subject: no completion for {', '.join(missing[:3])}; the action gates "
                "and code_edit_trained must judge the same held-out records"
            )
        return [texts[r.id] for r in records]

    return subject
