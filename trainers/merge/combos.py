"""The 8 merge combos (linear|SLERP) × (TIES|DARE) × (Frankenmerge|DFS) as one composition.

A combo is three binary choices applied in a fixed order to a set of parents that
share a common ancestor ``base`` (for Cognate models: the shared initialisation):

1. **interpolation** — ``linear`` mean of the parents, or ``slerp`` (for more than two
   parents a chained spherical running mean: ``slerp(acc, pᵢ, t=1/(i+1))``; with two
   parents the recipe's ``t``);
2. **sparse task arithmetic** — ``ties`` or ``dare`` of the parents' task vectors
   relative to ``base``;
3. **layer composition** over the candidates ``[interpolated, sparse, *parents]`` —
   ``frankenmerge`` (layer ``i`` from one candidate, chosen per layer) or ``dfs``
   (a layer path of ``(candidate, layer)`` steps; by default each step takes layer ``i``
   or a neighbour, so the depth is kept and the result stays loadable with the same
   config).  Non-layer parameters come from the interpolated model.

Unset layer choices are drawn from the recipe's seed, so a recipe is a complete,
reproducible genome.  :class:`ComboRegistry` counts which combos were used (a gate
checks that all 8 ran).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from harness.errors import TrainerError
from trainers.merge.layers import LAYER_PATTERN, dfs, frankenmerge, layer_count
from trainers.merge.tensor_ops import StateDict, dare, linear, slerp, ties

__all__ = ["ALL_COMBOS", "Combo", "ComboRegistry", "MergeRecipe", "compose"]

Interp = Literal["linear", "slerp"]
Sparse = Literal["ties", "dare"]
LayerOp = Literal["frankenmerge", "dfs"]


@dataclass(frozen=True, order=True)
class Combo:
    """One choice from each of the three method pairs."""

    interp: Interp
    sparse: Sparse
    layers: LayerOp

    @property
    def name(self) -> str:
        """``"slerp+ties+dfs"``-style label (stable; used as a registry/evidence key)."""
        return f"{self.interp}+{self.sparse}+{self.layers}"


#: All 8 combos, in a fixed order (index = 4·interp + 2·sparse + layers bits).
ALL_COMBOS: tuple[Combo, ...] = tuple(
    Combo(i, s, lay)
    for i in ("linear", "slerp")
    for s in ("ties", "dare")
    for lay in ("frankenmerge", "dfs")
)


@dataclass(frozen=True)
class MergeRecipe:
    """A complete, reproducible merge genome."""

    combo: Combo
    seed: int
    t: float = 0.5
    density: float = 0.5
    weights: tuple[float, ...] | None = None
    layer_choice: tuple[int, ...] | None = None
    path: tuple[tuple[int, int], ...] | None = None


@dataclass
class ComboRegistry:
    """Counts how often each combo was used; ``all_used`` is what the gate decides on."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, combo: Combo) -> None:
        """Count one use of ``combo``."""
        self.counts[combo.name] += 1

    @property
    def used(self) -> int:
        """Number of distinct combos used at least once (0 … 8)."""
        return sum(1 for c in ALL_COMBOS if self.counts[c.name] > 0)

    @property
    def all_used(self) -> bool:
        """True iff every one of the 8 combos ran at least once."""
        return self.used == len(ALL_COMBOS)

    def as_dict(self) -> dict[str, int]:
        """All 8 combo names → count (zeros included), for evidence."""
        return {c.name: self.counts[c.name] for c in ALL_COMBOS}


def _interpolate(parents: Sequence[Mapping[str, torch.Tensor]], recipe: MergeRecipe) -> StateDict:
    if recipe.combo.interp == "linear":
        return linear(parents, weights=recipe.weights)
    if len(parents) == 2:
        return slerp(parents[0], parents[1], t=recipe.t)
    acc = dict(parents[0])
    for i, p in enumerate(parents[1:], start=1):
        acc = slerp(acc, p, t=1.0 / (i + 1))
    return acc


def _default_layers(
    recipe: MergeRecipe, depth: int, n_sources: int
) -> tuple[list[int], list[tuple[int, int]]]:
    rng = random.Random(recipe.seed)
    choice = list(recipe.layer_choice or [rng.randrange(n_sources) for _ in range(depth)])
    if recipe.path is not None:
        return choice, list(recipe.path)
    path = []
    for i in range(depth):
        layer = min(depth - 1, max(0, i + rng.choice((-1, 0, 0, 1))))
        path.append((rng.randrange(n_sources), layer))
    return choice, path


def compose(
    parents: Sequence[Mapping[str, torch.Tensor]],
    recipe: MergeRecipe,
    *,
    base: Mapping[str, torch.Tensor],
    registry: ComboRegistry | None = None,
    pattern: str = LAYER_PATTERN,
) -> StateDict:
    """Merge ``parents`` (common ancestor ``base``) with ``recipe``; records the combo."""
    if len(parents) < 2:
        raise TrainerError(f"compose: needs ≥ 2 parents; got {len(parents)}.")
    c = recipe.combo
    interp = _interpolate(parents, recipe)
    if c.sparse == "ties":
        sparse = ties(base, parents, density=recipe.density, weights=recipe.weights)
    else:
        sparse = dare(
            base,
            parents,
            density=recipe.density,
            seed=recipe.seed,
            weights=recipe.weights,
            normalize=True,
        )
    sources = [interp, sparse, *parents]
    depth = layer_count(interp, pattern=pattern)
    choice, path = _default_layers(recipe, depth, len(sources))
    if c.layers == "frankenmerge":
        out = frankenmerge(sources, choice, pattern=pattern)
    else:
        out = dfs(sources, path, pattern=pattern)
    if registry is not None:
        registry.record(c)
    return out
