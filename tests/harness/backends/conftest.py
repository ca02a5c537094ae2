"""One untrained tiny model per test session, shared by xdist workers (the build is file-locked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainers.tiny import TinyModelConfig, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by all workers of this run; build_tiny_model locks
    return build_tiny_model(TinyModelConfig(), out_dir=root / "tiny-models")


@pytest.fixture(scope="session")
def hf_generator(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    import torch

    from harness.backends.hf import HFGenerator

    torch.set_num_threads(1)
    return HFGenerator.from_pretrained(tiny_model_dir, batch_size=4)
