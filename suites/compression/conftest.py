"""Compression phase fixtures: one cached training run and one decode-speed measurement.

``compression_run`` trains the embedded tiny model, compresses it (staged
BitNet QAT), packs and evaluates it — once per machine for a given config
(cached by digest under ``<cache>/compression``; a file lock makes xdist
workers wait for the first one).  ``speed_result`` measures decode speed once
per *session* (it is a property of the machine now, not of the artifact), keyed
by xdist's ``testrun_uid`` so the workers of one run share it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from trainers.bitnet.pipeline import CompressionRun, CompressionRunConfig, run_compression
from trainers.bitnet.speed_run import SpeedConfig, measure_speed
from trainers.bitnet.task import PROMPT_LEN, encode_items, make_splits


def _cache_root(config: pytest.Config) -> Path:
    from harness.settings import get_settings  # HARNESS_CACHE_DIR, docs/settings.md

    value = config.getoption("--cache-dir", default=None)
    return Path(value) if value else get_settings().cache_dir


@pytest.fixture(scope="session")
def compression_config() -> CompressionRunConfig:
    return CompressionRunConfig()


@pytest.fixture(scope="session")
def compression_run(
    request: pytest.FixtureRequest, compression_config: CompressionRunConfig
) -> CompressionRun:
    return run_compression(
        compression_config,
        cache_dir=_cache_root(request.config) / "compression",
        progress=lambda _msg: None,
    )


@pytest.fixture(scope="session")
def speed_result(
    request: pytest.FixtureRequest,
    compression_config: CompressionRunConfig,
    compression_run: CompressionRun,
) -> dict[str, Any]:
    try:
        session = str(request.getfixturevalue("testrun_uid"))
    except pytest.FixtureLookupError:  # xdist not installed: one process, one session
        session = uuid.uuid4().hex
    test = make_splits(
        seed=compression_config.seed,
        n_dev=compression_config.n_dev,
        n_test=compression_config.n_test,
    )["test"]
    ids = torch.from_numpy(encode_items(test.a[:10], test.b[:10]))[:, :PROMPT_LEN]
    return measure_speed(
        SpeedConfig(threads=compression_config.threads),
        fp_dir=Path(compression_run.paths["fp32"]),
        packed_dir=Path(compression_run.paths["packed"]),
        tiny_prompts=[row[None, :] for row in ids],
        cache_dir=_cache_root(request.config) / "compression",
        session=session[:16],
    )
