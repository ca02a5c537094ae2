"""The cache reuse both code-edit stage trainers share (``trl_common.CachedStage``).

No training here: a toy stage whose build writes a file shows when an entry is
built, reused or rebuilt, and which reuses are noted as training runs (SRL notes
every reuse, SFT only a reuse with a W&B run record — the two trainers' behaviour
before they shared this code).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.cachekey import CacheKey, cache_key, reset_provenance, training_runs_used
from trainers.code_edit.sft import CodeEditSFTTrainer
from trainers.code_edit.srl import SRLTrainer
from trainers.code_edit.trl_common import ARTIFACT_FILE, CachedStage


def _key(data: str) -> CacheKey:
    return cache_key("toy-stage", modules=("trainers.code_edit.trl_common",), data=data)


class _Toy(CachedStage[str]):
    kind: ClassVar[str] = "toy"
    log_name: ClassVar[str] = "log.json"
    note_untracked: ClassVar[bool] = False

    builds = 0
    wandb: ClassVar[dict[str, Any]] = {}

    def run(self, data: str) -> Any:
        def build(out: Path) -> dict[str, Any]:
            type(self).builds += 1
            (out / "model").mkdir()
            (out / "model" / "weights.bin").write_bytes(f"{self.config}:{data}".encode())
            return {"tag": self.config, "wandb": dict(self.wandb)} if self.wandb else {}

        return self._reuse_or_build(_key(data), self.config, build)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_provenance()
    _Toy.builds = 0
    _Toy.wandb = {}
    yield
    reset_provenance()


def test_builds_once_then_reuses_by_key(tmp_path: Path) -> None:
    stage = _Toy("a", models_dir=tmp_path, progress=lambda _m: None)
    first = stage.run("rows-1")
    assert not first.cached and _Toy.builds == 1
    marker = json.loads((first.path / ARTIFACT_FILE).read_text(encoding="utf-8"))
    assert marker["key"] == first.config_digest and marker["digest"] == first.digest
    assert marker["metrics"]["cache"]["key"] == first.config_digest
    again = stage.run("rows-1")
    assert again.cached and _Toy.builds == 1 and again.digest == first.digest
    assert again.log_path == first.path / "log.json"
    other = stage.run("rows-2")  # other data: another key, another directory
    assert not other.cached and _Toy.builds == 2 and other.path != first.path


def test_refresh_rebuilds(tmp_path: Path) -> None:
    _Toy("a", models_dir=tmp_path).run("rows")
    rebuilt = _Toy("a", models_dir=tmp_path, refresh=True).run("rows")
    assert not rebuilt.cached and _Toy.builds == 2


def test_untracked_reuse_is_noted_only_when_the_stage_says_so(tmp_path: Path) -> None:
    _Toy("a", models_dir=tmp_path).run("rows")
    reset_provenance()
    _Toy("a", models_dir=tmp_path).run("rows")  # reused, no W&B record: not noted
    assert "toy/a" not in training_runs_used()

    class _NotesAll(_Toy):
        note_untracked: ClassVar[bool] = True

    _NotesAll("a", models_dir=tmp_path).run("rows")
    assert training_runs_used()["toy/a"] == {}


def test_tracked_reuse_is_noted(tmp_path: Path) -> None:
    _Toy.wandb = {"mode": "offline", "run_id": "r1"}
    _Toy("a", models_dir=tmp_path).run("rows")
    reset_provenance()
    assert _Toy("a", models_dir=tmp_path).run("rows").cached
    assert training_runs_used()["toy/a"]["run_id"] == "r1"


def test_the_two_trainers_keep_their_noting_rules() -> None:
    assert (CodeEditSFTTrainer.kind, CodeEditSFTTrainer.note_untracked) == ("sft", False)
    assert (SRLTrainer.kind, SRLTrainer.note_untracked) == ("srl", True)
    assert CodeEditSFTTrainer.log_name == "log_history.json"
    assert SRLTrainer.log_name == "curves.json"
