"""EvoMerge loop on toy state dicts with a known optimum (no training, milliseconds)."""

from __future__ import annotations

import pytest
import torch

from harness.errors import TrainerError
from trainers.forge.evolution import EvoConfig, evolve, task_diversity


def _toy(
    directions: list[torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    base = {
        "model.embed.weight": torch.ones(4),
        **{f"model.layers.{i}.w": torch.ones(4) for i in range(2)},
    }
    seeds = []
    for d in directions:
        seeds.append({k: v + d for k, v in base.items()})
    return base, seeds


def _fitness_towards(target: dict[str, torch.Tensor], calls: list[int]):  # type: ignore[no-untyped-def]
    def fitness(sd: dict[str, torch.Tensor]) -> float:
        calls.append(1)
        return -sum(float((sd[k] - target[k]).norm()) for k in target)

    return fitness


def test_evolution_uses_all_combos_keeps_elites_and_caches_fitness() -> None:
    eye = torch.eye(4)
    base, seeds = _toy([eye[0], eye[1], eye[2]])
    target = {k: v + 0.5 * (eye[0] + eye[1] + eye[2]) for k, v in base.items()}
    calls: list[int] = []
    res = evolve(
        seeds, base=base, fitness=_fitness_towards(target, calls),
        config=EvoConfig(generations=6, population=8, elite=2, seed=1),
    )  # fmt: skip
    assert res.registry.all_used
    best = [h.best for h in res.history]
    assert best == sorted(best)  # elitism: never decreases
    best_seed = max(-sum(float((s[k] - target[k]).norm()) for k in target) for s in seeds)
    assert res.champion.fitness is not None and res.champion.fitness > best_seed + 0.5
    assert res.fitness_calls == len(calls) == len(res.lineage)  # each individual scored once
    assert res.history[0].diversity > 0.3 and res.history[0].injections == 0
    lineage_labels = {label for _, label in res.lineage.values()}
    assert "seed" in lineage_labels and "slerp+dare+dfs" in lineage_labels


def test_parallel_seeds_trigger_diversity_injection() -> None:
    d = torch.tensor([1.0, 2.0, 0.0, 0.0])
    base, seeds = _toy([d, 1.1 * d, 0.9 * d])
    assert task_diversity(seeds, base=base) == pytest.approx(0.0, abs=1e-6)
    res = evolve(
        seeds, base=base, fitness=_fitness_towards(base, []),
        config=EvoConfig(generations=2, population=6, elite=1, seed=0),
    )  # fmt: skip
    assert all(h.injections > 0 for h in res.history)  # monitored and acted on, every time


def test_degenerate_children_fall_back_to_their_best_parent() -> None:
    eye = torch.eye(4)
    base, seeds = _toy([eye[0], eye[1]])
    res = evolve(
        seeds, base=base, fitness=_fitness_towards(base, []),
        config=EvoConfig(generations=2, population=4, elite=1, seed=0),
        probe=lambda sd: torch.zeros(3, 2),  # every model "constant" → every merge degenerate
    )  # fmt: skip
    merges = [label for parents, label in res.lineage.values() if parents]
    assert merges and all(label.startswith("fallback:") for label in merges)
    assert sum(h.fallbacks for h in res.history) > 0


def test_config_is_validated() -> None:
    with pytest.raises(TrainerError, match="elite"):
        EvoConfig(population=4, elite=4)
    with pytest.raises(TrainerError, match="generations"):
        EvoConfig(generations=0)
