"""Every knob of the forge run (Cognate + EvoMerge); its canonical JSON is part of the cache key.

Size-agnostic: width, depth, heads, context and step counts are all fields, nothing in
the code assumes the embedded default's size.  The three specialisations differ in
what a model can differ in and still be merged parameter-by-parameter with the others
(same shapes): the **data mix** over difficulty levels, the **context** it is trained
to use, its learning rate and its data-order seed.  Depth/width specialisation (as the
brief also suggests) would give models whose state dicts cannot be interpolated, so
it is not used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.errors import TrainerError

__all__ = ["DEFAULT_SPECIALISTS", "EvoSettings", "ForgeConfig", "SpecialistConfig"]


class SpecialistConfig(BaseModel):
    """One Cognate model: how its fine-tuning from the shared stem differs from the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    level_weights: tuple[float, ...] = Field(
        description="sampling weight of each difficulty level 1 … 4 in its training mix"
    )
    context: int = Field(ge=8, description="tokens it sees (longer prompts keep their end)")
    lr: float = Field(gt=0)
    seed: int


#: reasoning = multi-step problems (levels 3–4 weighted), full context; memory = every
#: level uniformly, full context (long problems kept whole); speed = short problems
#: (levels 1–2) under a 40-token context, so it is the cheapest to run.
DEFAULT_SPECIALISTS = (
    SpecialistConfig(
        name="reasoning", level_weights=(0.15, 0.15, 0.35, 0.35), context=96, lr=1e-3, seed=11
    ),
    SpecialistConfig(
        name="memory", level_weights=(0.25, 0.25, 0.25, 0.25), context=96, lr=1e-3, seed=12
    ),
    SpecialistConfig(
        name="speed", level_weights=(0.5, 0.4, 0.05, 0.05), context=40, lr=1e-3, seed=13
    ),
)


class EvoSettings(BaseModel):
    """EvoMerge knobs (see :class:`trainers.forge.evolution.EvoConfig`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generations: int = Field(default=50, ge=1)
    population: int = Field(default=8, ge=4)
    elite: int = Field(default=2, ge=1)
    diversity_floor: float = 0.3
    seed: int = 0


class ForgeConfig(BaseModel):
    """The whole forge run; the embedded default fits a few CPU minutes (docs/forge.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(default=64, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    batch: int = Field(default=64, ge=1)
    stem_steps: int = Field(default=1500, ge=1)
    stem_lr: float = 3e-3
    #: the stem's mix over levels 1 … 4, weighted toward the easy levels: a model this
    #: small learns one- and two-step problems first (measured: docs/forge.md)
    stem_level_weights: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    specialist_steps: int = Field(default=300, ge=1)
    n_train: int = Field(default=20_000, ge=100)
    n_selection: int = Field(default=400, ge=20)
    n_held_out: int = Field(default=800, ge=20)
    seed: int = 0
    threads: int = Field(default=1, ge=1)
    specialists: tuple[SpecialistConfig, ...] = DEFAULT_SPECIALISTS
    evolution: EvoSettings = EvoSettings()
    #: user JSONL (``question``/``answer``) instead of the generated task; split 80/10/10
    data_path: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ForgeConfig:
        if self.hidden % self.heads:
            raise TrainerError(
                f"ForgeConfig: hidden={self.hidden} is not a multiple of heads={self.heads}."
            )
        if len(self.specialists) < 2:
            raise TrainerError("ForgeConfig: evolution needs at least 2 specialists.")
        if len({s.name for s in self.specialists}) != len(self.specialists):
            raise TrainerError("ForgeConfig: specialist names must be distinct.")
        return self

    @property
    def context(self) -> int:
        """Position-embedding capacity shared by every model (the largest context)."""
        return max(s.context for s in self.specialists)
