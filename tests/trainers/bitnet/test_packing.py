"""The packed artifact: 2 bits per ternary weight on disk, exact load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainers.bitnet.packing import (
    ARTIFACT_FILE,
    ArtifactError,
    load_packed,
    read_packed,
    round_to_storage,
    save_packed,
)
from trainers.bitnet.quant import BitLinear, ternary_linears, to_bitlinear
from trainers.bitnet.task import encode_items, make_splits, tiny_llama


def _quantized(seed: int = 0, fallback: tuple[str, ...] = ()) -> torch.nn.Module:
    model = tiny_llama(hidden=32, layers=2, heads=2, intermediate=64, seed=seed)
    names = [n for n in ternary_linears(model) if n not in fallback]
    to_bitlinear(model, names)
    model.eval()
    return round_to_storage(model)


def _ids() -> torch.Tensor:
    test = make_splits(seed=0, n_dev=10, n_test=20)["test"]
    return torch.from_numpy(encode_items(test.a, test.b))


@pytest.mark.parametrize("kernels", [False, True])
def test_round_trip_reproduces_outputs_exactly(tmp_path: Path, kernels: bool) -> None:
    model = _quantized(fallback=("model.layers.1.mlp.down_proj",))
    save_packed(model, tmp_path)
    loaded = load_packed(tmp_path, kernels=kernels)
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)


def test_ternary_tensors_take_two_bits_per_weight(tmp_path: Path) -> None:
    model = _quantized()
    path = save_packed(model, tmp_path)
    header, _ = read_packed(path)
    ternary = [e for e in header["tensors"] if e["kind"] == "ternary"]
    assert len(ternary) == 14
    for e in ternary:
        n, k = e["shape"]
        assert e["nbytes"] == n * ((k + 3) // 4)
    assert sorted(header["meta"]["ternary_layers"]) == sorted(
        n for n, m in model.named_modules() if isinstance(m, BitLinear)
    )
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "llama"
    fp32_bytes = sum(p.numel() * 4 for p in model.state_dict().values())
    assert path.stat().st_size * 6 < fp32_bytes


def test_fallback_layers_are_stored_in_higher_precision(tmp_path: Path) -> None:
    keep = "model.layers.0.self_attn.q_proj"
    model = _quantized(fallback=(keep,))
    header, _ = read_packed(save_packed(model, tmp_path))
    kinds = {e["name"]: e["kind"] for e in header["tensors"]}
    assert kinds[f"{keep}.weight"] == "bfloat16"
    assert keep not in header["meta"]["ternary_layers"]


def test_reader_rejects_foreign_and_truncated_files(tmp_path: Path) -> None:
    (tmp_path / ARTIFACT_FILE).write_bytes(b"NOTBITNET" * 4)
    with pytest.raises(ArtifactError, match="not a packed BitNet artifact"):
        read_packed(tmp_path / ARTIFACT_FILE)
    model = _quantized()
    path = save_packed(model, tmp_path / "ok")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="truncated"):
        load_packed(tmp_path / "ok")
    with pytest.raises(ArtifactError, match="high_precision"):
        save_packed(model, tmp_path / "bad", high_precision="int4")


def test_untrained_bitlinear_untied_state(tmp_path: Path) -> None:
    model = tiny_llama(hidden=16, layers=1, heads=2, intermediate=32, seed=3)
    to_bitlinear(model, ternary_linears(model))
    model.train()  # never frozen: save_packed freezes from the latent weights itself
    save_packed(model, tmp_path)
    model.eval()
    loaded = load_packed(tmp_path)
    assert torch.equal(
        loaded.get_submodule("model.layers.0.mlp.up_proj").codes,
        model.get_submodule("model.layers.0.mlp.up_proj").codes,
    )
