from __future__ import annotations

import json
from pathlib import Path

from trainers.base import (
    Artifact,
    TrainerAdapter,
    config_digest,
    directory_digest,
    write_json_atomic,
)


def test_config_digest_is_order_independent_and_sensitive() -> None:
    a = config_digest({"lr": 0.01, "layers": [2], "name": "cb"})
    b = config_digest({"name": "cb", "layers": [2], "lr": 0.01})
    assert a == b and len(a) == 64
    assert config_digest({"lr": 0.02, "layers": [2], "name": "cb"}) != a


def test_directory_digest_tracks_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x00\x01")
    first = directory_digest(tmp_path)
    assert directory_digest(tmp_path) == first
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x00\x02")
    assert directory_digest(tmp_path) != first
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (tmp_path / "sub" / "w.bin").rename(tmp_path / "sub" / "v.bin")
    assert directory_digest(tmp_path) != first


def test_write_json_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "a.json"
    write_json_atomic(target, {"x": 1})
    write_json_atomic(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_artifact_round_trips_to_dict(tmp_path: Path) -> None:
    art = Artifact(path=tmp_path, digest="d", config_digest="c", log_path=tmp_path / "log")
    data = art.to_dict()
    assert data["path"] == str(tmp_path) and data["log_path"] == str(tmp_path / "log")
    assert data["cached"] is False


def test_adapters_satisfy_the_protocol(tmp_path: Path) -> None:
    from trainers.circuit_breaker.trainer import CircuitBreakerTrainer
    from trainers.sft import SFTAdapter

    assert isinstance(SFTAdapter(out_root=tmp_path), TrainerAdapter)
    cb = CircuitBreakerTrainer(base_model_dir=tmp_path, ds=[], dr=[], out_root=tmp_path)
    assert isinstance(cb, TrainerAdapter)
    assert not isinstance(object(), TrainerAdapter)
