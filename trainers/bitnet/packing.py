"""The packed ternary artifact: one binary file beside the HF ``config.json``.

Directory layout::

    <dir>/config.json      the model's Hugging Face config (``save_pretrained``)
    <dir>/model.bitnet     every tensor of the state dict, packed

``model.bitnet`` (little-endian)::

    bytes 0-7    magic  b"BITNET58"
    bytes 8-11   uint32 format version (1)
    bytes 12-15  uint32 header length H
    H bytes      UTF-8 JSON header (below)
    padding      zeros to a 64-byte boundary; the data section starts there
    data         each tensor's bytes at header offset (relative to the data start)

Header: ``{"tensors": [{name, kind, shape, offset, nbytes, ...}], "meta": {...}}``
with ``kind``:

* ``ternary`` — a linear weight ``(N, K)``: ``N · ceil(K/4)`` bytes, 2 bits per
  weight, 4 weights per byte in the kernel's plane layout
  (:func:`trainers.bitnet.kernel.pack_codes`: byte ``j`` of a row holds columns
  ``j, Q+j, 2Q+j, 3Q+j``, code = weight + 1), plus ``scale``: the float32
  absmean scale written with ``float.hex`` (exact);
* ``bfloat16`` / ``float16`` / ``float32`` — any other tensor (embeddings, norms,
  the LM head, fallback linears kept in higher precision), raw little-endian.

``meta`` lists the ternary and the fallback layers.  :func:`load_packed`
rebuilds the HF model with ``BitLinear`` layers holding exactly the stored codes
and scales, so its outputs equal the quantized model's bit for bit.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.atomic import atomic_open
from harness.errors import TrainerError
from trainers.bitnet.kernel import PackedTernaryLinear, pack_codes, unpack_codes
from trainers.bitnet.quant import BitLinear, to_bitlinear

__all__ = [
    "ARTIFACT_FILE",
    "FORMAT_VERSION",
    "MAGIC",
    "ArtifactError",
    "load_packed",
    "read_packed",
    "round_to_storage",
    "save_packed",
    "to_packed_kernels",
]

MAGIC = b"BITNET58"
FORMAT_VERSION = 1
ARTIFACT_FILE = "model.bitnet"
_ALIGN = 64
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class ArtifactError(TrainerError, ValueError):
    """A packed artifact that cannot be read (names the file and the problem).

    A :class:`~harness.errors.HarnessError` like every error the project raises; still a
    ``ValueError`` for callers written before it was rooted there.
    """


def _tensor_bytes(t: torch.Tensor, kind: str) -> bytes:
    t = t.detach().to(_DTYPES[kind]).contiguous().cpu()
    if kind == "bfloat16":
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def _entries(model: nn.Module, high_precision: str) -> list[tuple[dict[str, Any], bytes]]:
    ternary = {n: m for n, m in model.named_modules() if isinstance(m, BitLinear)}
    out: list[tuple[dict[str, Any], bytes]] = []
    for name, tensor in model.state_dict().items():
        owner, _, leaf = name.rpartition(".")
        if owner in ternary and leaf == "weight":
            mod = ternary[owner]
            if mod.codes is None:
                mod.freeze()
            assert mod.codes is not None and mod.scale is not None
            data = pack_codes(mod.codes.numpy()).tobytes()
            entry = {
                "name": name,
                "kind": "ternary",
                "shape": list(tensor.shape),
                "scale": float(mod.scale.item()).hex(),
            }
            out.append((entry, data))
        else:
            kind = high_precision if tensor.is_floating_point() else "float32"
            out.append(
                (
                    {"name": name, "kind": kind, "shape": list(tensor.shape)},
                    _tensor_bytes(tensor, kind),
                )
            )
    return out


def save_packed(
    model: nn.Module,
    directory: str | Path,
    *,
    high_precision: str = "bfloat16",
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` + ``model.bitnet`` for ``model`` (``BitLinear`` layers packed).

    Tied weights are written once per state-dict name (HF ties are re-applied
    on load).  The file is written atomically (:func:`harness.atomic.atomic_open`).
    """
    if high_precision not in _DTYPES:
        raise ArtifactError(f"high_precision={high_precision!r}: use one of {sorted(_DTYPES)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)  # type: ignore[operator,union-attr]
    entries = _entries(model, high_precision)
    offset = 0
    for entry, data in entries:
        entry["offset"], entry["nbytes"] = offset, len(data)
        offset += len(data)
    ternary = [e["name"].rsplit(".", 1)[0] for e, _ in entries if e["kind"] == "ternary"]
    header = json.dumps(
        {"tensors": [e for e, _ in entries], "meta": {**(meta or {}), "ternary_layers": ternary}},
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    prefix = MAGIC + struct.pack("<II", FORMAT_VERSION, len(header)) + header
    pad = (-len(prefix)) % _ALIGN
    with atomic_open(directory / ARTIFACT_FILE, "wb") as fh:
        fh.write(prefix + b"\0" * pad)
        for _, data in entries:
            fh.write(data)
    return directory / ARTIFACT_FILE


def read_packed(path: str | Path) -> tuple[dict[str, Any], memoryview]:
    """Parse ``model.bitnet``: ``(header, data section)``; raises :class:`ArtifactError`."""
    path = Path(path)
    blob = path.read_bytes()
    if blob[:8] != MAGIC:
        raise ArtifactError(f"{path}: not a packed BitNet artifact (magic {blob[:8]!r})")
    version, hlen = struct.unpack("<II", blob[8:16])
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format version {version}, this reader knows {FORMAT_VERSION}")
    header = json.loads(blob[16 : 16 + hlen].decode("utf-8"))
    start = 16 + hlen + ((-(16 + hlen)) % _ALIGN)
    return header, memoryview(blob)[start:]


def _decode(entry: dict[str, Any], data: memoryview) -> torch.Tensor | tuple[np.ndarray, float]:
    raw = data[entry["offset"] : entry["offset"] + entry["nbytes"]]
    if len(raw) != entry["nbytes"]:
        raise ArtifactError(f"tensor {entry['name']}: file truncated")
    shape = tuple(entry["shape"])
    kind = entry["kind"]
    if kind == "ternary":
        packed = np.frombuffer(raw, dtype=np.uint8).reshape(shape[0], -1).copy()
        return packed, float.fromhex(entry["scale"])
    if kind == "bfloat16":
        return (
            torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy())
            .view(torch.bfloat16)
            .reshape(shape)
        )
    if kind in ("float16", "float32"):
        dt = np.float16 if kind == "float16" else np.float32
        return torch.from_numpy(np.frombuffer(raw, dtype=dt).copy()).reshape(shape)
    raise ArtifactError(f"tensor {entry['name']}: unknown kind {kind!r}")


def load_packed(directory: str | Path, *, kernels: bool = False) -> nn.Module:
    """Rebuild the quantized HF model from ``directory`` (eval mode, float32 compute).

    With ``kernels=True`` the ternary layers are :class:`PackedTernaryLinear`
    (the numba kernel, for decode speed); otherwise ``BitLinear`` holding the
    stored codes (trainable again after ``.train()``).  Outputs are identical.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = Path(directory)
    header, data = read_packed(directory / ARTIFACT_FILE)
    config = AutoConfig.from_pretrained(directory)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)  # type: ignore[no-untyped-call]
    ternary = [e for e in header["tensors"] if e["kind"] == "ternary"]
    to_bitlinear(model, [e["name"].rsplit(".", 1)[0] for e in ternary])
    state: dict[str, torch.Tensor] = {}
    codes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for entry in header["tensors"]:
        value = _decode(entry, data)
        if isinstance(value, tuple):
            packed, scale = value
            k = entry["shape"][1]
            c = torch.from_numpy(unpack_codes(packed, k))
            s = torch.tensor(scale, dtype=torch.float32)
            codes[entry["name"].rsplit(".", 1)[0]] = (c, s)
            state[entry["name"]] = c.float() * s  # the latent weight a further QAT would start from
        else:
            state[entry["name"]] = value.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not _tied(model, m)]:
        raise ArtifactError(
            f"{directory}: state mismatch (missing {missing}, unexpected {unexpected})"
        )
    model.eval()
    for name, (c, s) in codes.items():
        mod = model.get_submodule(name)
        assert isinstance(mod, BitLinear)
        mod.codes, mod.scale = c, s
    if kernels:
        to_packed_kernels(model)
    return model  # type: ignore[no-any-return]


def round_to_storage(model: nn.Module, high_precision: str = "bfloat16") -> nn.Module:
    """Round every tensor the artifact stores in ``high_precision`` to that precision, in place.

    Call it on the quantized model before evaluating it, so the evaluated model
    *is* the stored one (the round trip is then exact, not approximately so).
    """
    dtype = _DTYPES[high_precision]
    ternary = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, BitLinear)}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name not in ternary and tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).float())
    return model


def _tied(model: nn.Module, name: str) -> bool:
    return bool(getattr(model.config, "tie_word_embeddings", False)) and name.startswith("lm_head")


def to_packed_kernels(model: nn.Module) -> nn.Module:
    """Swap every frozen ``BitLinear`` for a :class:`PackedTernaryLinear` (in place)."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, BitLinear):
            if mod.codes is None or mod.scale is None:
                mod.freeze()
            assert mod.codes is not None and mod.scale is not None
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            packed = pack_codes(mod.codes.numpy())
            setattr(parent, attr, PackedTernaryLinear(packed, mod.scale, mod.in_features, mod.bias))
    return model
