"""EvoMerge: evolve a population of merges of the seed models; fitness is injected.

The loop knows nothing about tasks or splits: ``fitness(state_dict) → float`` is
supplied by the caller, who must score on the **selection** split (gates judge the
champion on held-out data afterwards).  Per generation:

1. score every new individual once (fitness is cached by individual id; individuals
   are immutable);
2. keep the ``elite`` best unchanged (so the best fitness never decreases);
3. fill the rest with children: half merge an elite with another member, half merge
   three losers together ("merging of losers"); each child's combo is taken
   round-robin from the 8 combos (initial fill included), so all 8 are used once 8
   merges have been made; ``t``/``density``/seed are drawn from the run's RNG;
4. every child goes through degenerate-merge detection; a degenerate child is replaced
   by a copy of its best parent (counted);
5. **population diversity** = mean pairwise cosine distance ``1 − cos(δᵢ, δⱼ)`` of the
   task vectors ``δ = θ − base`` (0 for identical models, 1 for orthogonal ones).  If it
   falls below ``diversity_floor`` the worst non-elites are replaced by fresh random
   merges of the seed models (diversity injection, counted).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import torch

from harness.errors import TrainerError
from trainers.merge.combos import ALL_COMBOS, ComboRegistry, MergeRecipe, compose
from trainers.merge.degenerate import Probe, merge_or_fallback
from trainers.merge.tensor_ops import StateDict

#: ``merge(parents, recipe, *, base, registry) → state dict`` (the signature of ``compose``).
Merge = Callable[..., StateDict]

__all__ = [
    "EvoConfig",
    "EvoResult",
    "GenerationStats",
    "Individual",
    "Merge",
    "evolve",
    "task_diversity",
]


@dataclass(frozen=True)
class EvoConfig:
    """Evolution knobs (keyword-only at call sites; defaults follow the brief where it says)."""

    generations: int = 50
    population: int = 8
    elite: int = 2
    diversity_floor: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 4 or not 1 <= self.elite < self.population:
            raise TrainerError(
                f"EvoConfig: population={self.population}, elite={self.elite}; need "
                "population ≥ 4 and 1 ≤ elite < population."
            )
        if self.generations < 1:
            raise TrainerError(f"EvoConfig: generations={self.generations}; need ≥ 1.")


@dataclass
class Individual:
    """One population member; ``recipe`` is None for a seed model or a fallback copy."""

    id: str
    state_dict: StateDict
    parents: tuple[str, ...] = ()
    recipe: MergeRecipe | None = None
    fitness: float | None = None


@dataclass(frozen=True)
class GenerationStats:
    """What one generation looked like (for the fitness curve and evidence)."""

    generation: int
    best: float
    mean: float
    diversity: float
    fallbacks: int
    injections: int


@dataclass
class EvoResult:
    """Champion, per-generation history, combo counts, lineage and the fitness-call count."""

    champion: Individual
    history: list[GenerationStats]
    registry: ComboRegistry
    lineage: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    fitness_calls: int = 0
    #: the last generation's members (ranked by fitness), from which the champion is taken
    final_population: list[Individual] = field(default_factory=list)


def _flat_delta(sd: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([(sd[k].float() - base[k].float()).reshape(-1) for k in sorted(base)])


def task_diversity(
    sds: Sequence[Mapping[str, torch.Tensor]], *, base: Mapping[str, torch.Tensor]
) -> float:
    """Mean pairwise cosine distance of task vectors (see module doc); 0 if < 2 models."""
    deltas = [_flat_delta(sd, base) for sd in sds]
    dists = []
    for a, b in combinations(deltas, 2):
        na, nb = float(a.norm()), float(b.norm())
        cos = float(a @ b) / (na * nb) if na > 0 and nb > 0 else 1.0
        dists.append(1.0 - cos)
    return sum(dists) / len(dists) if dists else 0.0


class _Run:
    """Mutable state of one evolution run (keeps :func:`evolve` short)."""

    def __init__(
        self,
        seeds: Sequence[Mapping[str, torch.Tensor]],
        base: Mapping[str, torch.Tensor],
        fitness: Callable[[StateDict], float],
        config: EvoConfig,
        probe: Probe | None,
        merge: Merge,
    ) -> None:
        self.merge = merge
        self.seeds = [dict(s) for s in seeds]
        self.base, self.fitness, self.cfg, self.probe = base, fitness, config, probe
        self.rng = random.Random(config.seed)
        self.registry = ComboRegistry()
        self.lineage: dict[str, tuple[tuple[str, ...], str]] = {}
        self.calls = self.next_id = self.combo_cursor = 0

    def new_id(self) -> str:
        self.next_id += 1
        return f"m{self.next_id}"

    def score(self, pop: list[Individual]) -> None:
        for ind in pop:
            if ind.fitness is None:
                ind.fitness = float(self.fitness(ind.state_dict))
                self.calls += 1

    def child(self, parents: Sequence[Individual]) -> tuple[Individual, bool]:
        combo = ALL_COMBOS[self.combo_cursor % len(ALL_COMBOS)]
        self.combo_cursor += 1
        recipe = MergeRecipe(
            combo,
            seed=self.rng.randrange(2**31),
            t=self.rng.uniform(0.2, 0.8),
            density=self.rng.uniform(0.3, 0.9),
        )
        sds = [p.state_dict for p in parents]
        best = max(parents, key=lambda p: p.fitness if p.fitness is not None else float("-inf"))
        outcome = merge_or_fallback(
            lambda: self.merge(sds, recipe, base=self.base, registry=self.registry),
            fallback=best.state_dict,
            references=sds,
            probe=self.probe,
        )
        cid = self.new_id()
        ids = tuple(p.id for p in parents)
        label = f"fallback:{best.id}" if outcome.used_fallback else combo.name
        self.lineage[cid] = (ids, label)
        kept = None if outcome.used_fallback else recipe
        return Individual(cid, outcome.state_dict, ids, kept), outcome.used_fallback

    def seed_population(self) -> list[Individual]:
        pop = []
        for sd in self.seeds:
            ind = Individual(self.new_id(), {k: v.clone() for k, v in sd.items()})
            self.lineage[ind.id] = ((), "seed")
            pop.append(ind)
        self.score(pop)
        return pop + self.fresh(self.cfg.population - len(pop), pop[: len(self.seeds)])[0]

    def fresh(self, n: int, seed_pop: list[Individual]) -> tuple[list[Individual], int]:
        """``n`` random merges of the seed models (initial fill and diversity injection)."""
        out, fallbacks = [], 0
        for _ in range(n):
            k = self.rng.randint(2, len(seed_pop))
            child, fell = self.child(self.rng.sample(seed_pop, k))
            out.append(child)
            fallbacks += fell
        return out, fallbacks

    def next_generation(self, ranked: list[Individual]) -> tuple[list[Individual], int]:
        elites, losers = ranked[: self.cfg.elite], ranked[self.cfg.elite :]
        n_children = self.cfg.population - len(elites)
        children, fallbacks = [], 0
        for i in range(n_children):
            if i % 2 == 0 or len(losers) < 3:
                others = [p for p in ranked if p.id != elites[i % len(elites)].id]
                parents = [elites[i % len(elites)], self.rng.choice(others)]
            else:
                parents = self.rng.sample(losers, 3)
            child, fell = self.child(parents)
            children.append(child)
            fallbacks += fell
        return elites + children, fallbacks


def _ranked(pop: list[Individual]) -> list[Individual]:
    return sorted(pop, key=lambda p: p.fitness if p.fitness is not None else float("-inf"))[::-1]


def evolve(
    seeds: Sequence[Mapping[str, torch.Tensor]],
    *,
    base: Mapping[str, torch.Tensor],
    fitness: Callable[[StateDict], float],
    config: EvoConfig,
    probe: Probe | None = None,
    merge: Merge = compose,
) -> EvoResult:
    """Run EvoMerge (module doc); returns the best individual ever scored as champion.

    ``merge`` builds a child from its parents' state dicts and a recipe (default
    :func:`~trainers.merge.combos.compose`); controls pass a broken one through the same
    loop (degenerate detection, fallback and counting are not bypassed).
    """
    if len(seeds) < 2 or len(seeds) > config.population:
        raise TrainerError(f"evolve: {len(seeds)} seed models; need 2 … population.")
    run = _Run(seeds, base, fitness, config, probe, merge)
    pop = run.seed_population()
    seed_pop = pop[: len(seeds)]
    history: list[GenerationStats] = []
    for gen in range(config.generations):
        run.score(pop)
        ranked = _ranked(pop)
        diversity = task_diversity([p.state_dict for p in ranked], base=base)
        injections = 0
        if diversity < config.diversity_floor:
            injections = max(1, (config.population - config.elite) // 2)
            fresh, _ = run.fresh(injections, seed_pop)
            run.score(fresh)
            ranked = _ranked(ranked[:-injections] + fresh)
            diversity = task_diversity([p.state_dict for p in ranked], base=base)
        scores = [p.fitness for p in ranked if p.fitness is not None]
        pop, fallbacks = run.next_generation(ranked)
        history.append(
            GenerationStats(
                gen, scores[0], sum(scores) / len(scores), diversity, fallbacks, injections
            )
        )
    run.score(pop)
    final = _ranked(pop)
    return EvoResult(final[0], history, run.registry, run.lineage, run.calls, final)
