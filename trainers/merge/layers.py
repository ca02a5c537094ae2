"""Layer-stack composition: Frankenmerge (each layer from a parent) and DFS (a layer path).

Both treat a model as ``non-layer parameters`` (embeddings, final norm, head) plus
a stack of decoder layers found by a key pattern (``model.layers.<i>.`` for
Llama-style checkpoints).  Non-layer parameters always come from ``sources[0]``
(in a combo: the output of the parameter-level merge).

* **Frankenmerge** — layer ``i`` of the result is layer ``i`` of ``sources[choice[i]]``;
  the depth is unchanged.
* **DFS** (data-flow-space merge, as in evolutionary model merging) — the result is the
  stack built by a path ``[(source, layer), …]``: each step copies one layer of one source,
  so a path may reorder, repeat or skip layers, and the depth is ``len(path)``.
  Frankenmerge is the special case ``path = [(choice[i], i) for i in range(depth)]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

from harness.errors import TrainerError
from trainers.merge.tensor_ops import StateDict

__all__ = ["LAYER_PATTERN", "dfs", "frankenmerge", "layer_count", "split_layers"]

#: Matches the decoder-layer prefix of HF Llama/Mistral/Qwen-style keys.
LAYER_PATTERN = r"^(.*?\blayers\.)(\d+)\.(.*)$"


def split_layers(
    sd: Mapping[str, torch.Tensor], *, pattern: str = LAYER_PATTERN
) -> tuple[StateDict, dict[int, dict[str, torch.Tensor]]]:
    """Split keys into non-layer params and ``{layer_index: {prefix-less key → tensor}}``."""
    rx = re.compile(pattern)
    other: StateDict = {}
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        m = rx.match(k)
        if m is None:
            other[k] = v
        else:
            layers.setdefault(int(m.group(2)), {})[f"{m.group(1)}\0{m.group(3)}"] = v
    idx = sorted(layers)
    if idx != list(range(len(idx))):
        raise TrainerError(f"layer indices are not 0…n-1 (got {idx[:10]}); check the key pattern.")
    return other, layers


def layer_count(sd: Mapping[str, torch.Tensor], *, pattern: str = LAYER_PATTERN) -> int:
    """Number of decoder layers matched by ``pattern``."""
    return len(split_layers(sd, pattern=pattern)[1])


def _unsplit_key(joined: str, index: int) -> str:
    prefix, rest = joined.split("\0", 1)
    return f"{prefix}{index}.{rest}"


def dfs(
    sources: Sequence[Mapping[str, torch.Tensor]],
    path: Sequence[tuple[int, int]],
    *,
    pattern: str = LAYER_PATTERN,
) -> StateDict:
    """Build a layer stack from ``path`` steps ``(source index, layer index)``; see module doc."""
    if not path:
        raise TrainerError("dfs: the layer path is empty; pass at least one (source, layer) step.")
    split = [split_layers(sd, pattern=pattern) for sd in sources]
    out: StateDict = {k: v.clone() for k, v in split[0][0].items()}
    for new_idx, (src, layer) in enumerate(path):
        if not 0 <= src < len(sources):
            raise TrainerError(f"dfs: step {new_idx} names source {src}; have {len(sources)}.")
        layers = split[src][1]
        if layer not in layers:
            raise TrainerError(
                f"dfs: step {new_idx} names layer {layer} of source {src}, "
                f"which has {len(layers)} layers."
            )
        for joined, v in layers[layer].items():
            out[_unsplit_key(joined, new_idx)] = v.clone()
    return out


def frankenmerge(
    sources: Sequence[Mapping[str, torch.Tensor]],
    choice: Sequence[int],
    *,
    pattern: str = LAYER_PATTERN,
) -> StateDict:
    """Layer ``i`` from ``sources[choice[i]]``; ``len(choice)`` must equal the depth."""
    depth = layer_count(sources[0], pattern=pattern)
    if len(choice) != depth:
        raise TrainerError(
            f"frankenmerge: {len(choice)} choices for {depth} layers; pass one each."
        )
    for i, sd in enumerate(sources[1:], start=1):
        if layer_count(sd, pattern=pattern) != depth:
            raise TrainerError(f"frankenmerge: source {i} depth differs from source 0 ({depth}).")
    return dfs(sources, [(c, i) for i, c in enumerate(choice)], pattern=pattern)
