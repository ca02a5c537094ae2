"""Cross-check linear, SLERP, TIES and DARE against mergekit 0.1.5 on the same checkpoints.

mergekit runs in its own venv (scripts/setup_mergekit.sh) through ``mergekit_runner.py``;
the tiny Llama checkpoints are written here with save_pretrained and both sides merge the
same safetensors.  Skipped when the venv is absent unless ``HARNESS_REQUIRE_MERGEKIT`` is
set (CI sets it, so there a missing venv fails).  Deliberate differences (docs/forge.md):
our SLERP is per row, mergekit's per tensor (checked via ``granularity="tensor"``); DARE's
random masks come from different generators, so DARE is checked exactly at density 1 and
by its defining properties (keep rate, L1 rescale) below 1.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from trainers.merge.tensor_ops import dare, linear, slerp, ties

_ROOT = Path(__file__).resolve().parents[3]
_RUNNER = Path(__file__).with_name("mergekit_runner.py")
SD = dict[str, torch.Tensor]


def _mergekit_python() -> Path:
    venv = Path(os.environ.get("HARNESS_MERGEKIT_VENV") or _ROOT / ".venv-mergekit")
    py = venv / "bin" / "python"
    if not py.is_file():
        if os.environ.get("HARNESS_REQUIRE_MERGEKIT"):
            pytest.fail(f"mergekit venv absent at {venv}; create it with scripts/setup_mergekit.sh")
        pytest.skip(f"mergekit venv absent at {venv}; create it with scripts/setup_mergekit.sh")
    return py


def _checkpoints(root: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(root / "base")
    for i, name in enumerate(("a", "b"), start=1):
        g = torch.Generator().manual_seed(i)
        m = LlamaForCausalLM(cfg)
        m.load_state_dict(
            {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in base.state_dict().items()}
        )
        m.save_pretrained(root / name)


def _jobs(root: Path) -> list[dict[str, object]]:
    a, b, base = str(root / "a"), str(root / "b"), str(root / "base")

    def job(name: str, config: dict[str, object]) -> dict[str, object]:
        return {"config": {**config, "dtype": "float32"}, "out": str(root / name), "seed": 0}

    def two(wa: float, wb: float, **p: float) -> list[dict[str, object]]:
        return [
            {"model": a, "parameters": {"weight": wa, **p}},
            {"model": b, "parameters": {"weight": wb, **p}},
        ]

    ties_models, dare_models = two(1.0, 2.0, density=0.5), two(1.0, 2.0, density=1.0)
    return [
        job("linear", {"merge_method": "linear", "models": two(1.0, 3.0)}),
        job(
            "slerp",
            {
                "merge_method": "slerp",
                "base_model": a,
                "models": [{"model": a}, {"model": b}],
                "parameters": {"t": 0.3},
            },
        ),
        job("ties", {"merge_method": "ties", "base_model": base, "models": ties_models}),
        job("dare1", {"merge_method": "dare_linear", "base_model": base, "models": dare_models}),
        job(
            "dare03",
            {
                "merge_method": "dare_linear",
                "base_model": base,
                "models": [{"model": a, "parameters": {"weight": 1.0, "density": 0.3}}],
            },
        ),
    ]


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SD]:
    from safetensors.torch import load_file

    py = _mergekit_python()
    root = tmp_path_factory.mktemp("mergekit")
    _checkpoints(root)
    jobs = _jobs(root)
    (root / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    proc = subprocess.run(
        [str(py), str(_RUNNER), str(root / "jobs.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ["base", "a", "b", *(Path(str(j["out"])).name for j in jobs)]
    return {n: load_file(str(root / n / "model.safetensors")) for n in names}


def _max_diff(ours: SD, theirs: SD) -> float:
    assert set(theirs) <= set(ours)
    return max(float((ours[k].float() - theirs[k].float()).abs().max()) for k in theirs)


def test_linear_matches_mergekit(merged: dict[str, SD]) -> None:
    ours = linear([merged["a"], merged["b"]], weights=[1.0, 3.0])
    assert _max_diff(ours, merged["linear"]) < 1e-6


def test_slerp_matches_mergekit_per_tensor_and_differs_per_row(merged: dict[str, SD]) -> None:
    a, b = merged["a"], merged["b"]
    assert _max_diff(slerp(a, b, t=0.3, granularity="tensor"), merged["slerp"]) < 1e-5
    assert _max_diff(slerp(a, b, t=0.3), merged["slerp"]) > 1e-3  # the documented difference


def test_ties_matches_mergekit(merged: dict[str, SD]) -> None:
    ours = ties(merged["base"], [merged["a"], merged["b"]], density=0.5, weights=[1.0, 2.0])
    assert _max_diff(ours, merged["ties"]) < 1e-6


def test_dare_matches_mergekit_at_full_density(merged: dict[str, SD]) -> None:
    ours = dare(merged["base"], [merged["a"], merged["b"]], density=1.0, seed=0, weights=[1.0, 2.0])
    assert _max_diff(ours, merged["dare1"]) < 1e-6


def test_dare_drop_has_mergekits_keep_rate_and_l1_rescale(merged: dict[str, SD]) -> None:
    base, a, theirs = merged["base"], merged["a"], merged["dare03"]
    ours = dare(base, [a], density=0.3, seed=0, rescale="l1")
    for name, sd in (("mergekit", theirs), ("ours", ours)):
        kept = total = 0
        for k in base:
            delta, got = a[k] - base[k], sd[k] - base[k]
            kept += int((got != 0).sum())
            total += got.numel()
            assert float(got.abs().sum()) == pytest.approx(float(delta.abs().sum()), rel=1e-4)
        assert abs(kept / total - 0.3) < 0.03, (name, kept / total)
