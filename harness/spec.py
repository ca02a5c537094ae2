"""Gate and phase specifications, loaded from ``gates/*.yaml`` with precise errors.

A spec is data, not code: a reviewer reads the YAML to learn what a phase
promises.  Loading errors name the file, the gate id, the field, the bad value
and the fix, because a typo in a threshold silently weakens a gate otherwise.
"""

from __future__ import annotations

import difflib
import itertools
import math
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import SpecError

__all__ = [
    "METRIC_DOMAINS",
    "METRIC_METHODS",
    "PARAM_MODELS",
    "DecisionRule",
    "Direction",
    "GateSpec",
    "Multiplicity",
    "PhaseSpec",
    "Tiers",
    "load_phase",
    "load_phases",
]

#: Metric families a gate may name, with the closed range their thresholds live in.
METRIC_DOMAINS: dict[str, tuple[float, float]] = {
    "proportion": (0.0, 1.0),
    "pass_at_k": (0.0, 1.0),
    "pass_at_k_uplift": (-1.0, 1.0),
    "paired_difference": (-1.0, 1.0),
    "relative_reduction": (-math.inf, 1.0),
    "ratio": (0.0, math.inf),
    "quantile": (-math.inf, math.inf),
    "mean": (-math.inf, math.inf),
    "count": (0.0, math.inf),
    "trend_slope": (-math.inf, math.inf),
    "judged_proportion": (0.0, 1.0),
}


#: CI methods a gate may name per metric (first = default).  Only methods whose
#: false-PASS rate is checked in ``harness calibrate`` are accepted: the
#: approximate proportion intervals (``wilson``, ``jeffreys``) false-PASS above α
#: for one-sided threshold claims (docs/statistics.md), the bootstrap above α for
#: paired ratios, pass@k and the pass@k uplift, so a YAML cannot choose them.
METRIC_METHODS: dict[str, tuple[str, ...]] = {
    "proportion": ("beta", "clopper-pearson", "exact"),
    "pass_at_k": ("betting", "beta"),
    "pass_at_k_uplift": ("betting",),
    "paired_difference": ("newcombe",),
    "relative_reduction": ("score", "tang"),
    "ratio": ("score", "tang"),
    "quantile": ("exact",),
    "mean": ("betting", "t"),
    "count": ("exact",),
    "trend_slope": ("theil-sen", "ols"),
    "judged_proportion": ("rogan-gladen",),
}


class _Params(BaseModel):
    """A metric's own ``params``; keys it does not know are kept for the suite (e.g.
    ``concurrency`` for a latency scenario) but the ones it reads are typed here."""

    model_config = ConfigDict(extra="allow")


class NoParams(_Params):
    """proportion, mean, trend_slope, judged_proportion: no params of their own."""


class CountParams(_Params):
    of: Literal["sum", "n"] = Field(
        default="sum", description="sum: add the outcome values; n: count the outcomes"
    )


class PassAtKParams(_Params):
    k: int = Field(default=1, ge=1, description="k of pass@k (samples per task ≥ k)")
    resamples: int | None = Field(default=None, ge=1, description="bootstrap resamples")


class UpliftParams(_Params):
    k_hi: int = Field(ge=1, description="the larger k (e.g. 16)")
    k_lo: int = Field(default=1, ge=1, description="the smaller k (default 1)")
    resamples: int | None = Field(default=None, ge=1, description="bootstrap resamples")


class ComparativeParams(_Params):
    paired: bool | None = Field(
        default=None,
        description="pair by item id (true), independent samples (false); default: by ids",
    )
    resamples: int | None = Field(default=None, ge=1, description="bootstrap resamples")


class QuantileParams(_Params):
    q: float = Field(gt=0.0, lt=1.0, description="the quantile, e.g. 0.95 for p95")


#: The ``params`` each metric reads, validated when the YAML loads.
PARAM_MODELS: dict[str, type[_Params]] = {
    "proportion": NoParams,
    "pass_at_k": PassAtKParams,
    "pass_at_k_uplift": UpliftParams,
    "paired_difference": ComparativeParams,
    "relative_reduction": ComparativeParams,
    "ratio": ComparativeParams,
    "quantile": QuantileParams,
    "mean": NoParams,
    "count": CountParams,
    "trend_slope": NoParams,
    "judged_proportion": NoParams,
}


class Direction(StrEnum):
    GE = "ge"  # metric must be at least the threshold
    LE = "le"  # metric must be at most the threshold


class DecisionRule(StrEnum):
    BOUND = "bound"  # decide on the one-sided confidence bound (default, sound)
    POINT = "point"  # legacy: compare the point estimate; labelled as such in reports


class Multiplicity(StrEnum):
    HOLM = "holm"
    BH = "bh"
    NONE = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tiers(_Strict):
    """Thresholds by ambition: ``fallback`` ≤ ``primary`` ≤ ``stretch`` (for ``ge``)."""

    primary: float = Field(description="the threshold the requirement names")
    fallback: float | None = Field(
        default=None, description="a weaker threshold; when set, PASS needs only this one"
    )
    stretch: float | None = Field(default=None, description="a more ambitious threshold")

    def items(self) -> list[tuple[str, float]]:
        """Tiers present, most ambitious first."""
        out = [("stretch", self.stretch), ("primary", self.primary), ("fallback", self.fallback)]
        return [(name, value) for name, value in out if value is not None]

    @property
    def required(self) -> tuple[str, float]:
        """The tier a PASS verdict needs: fallback when declared, else primary."""
        if self.fallback is not None:
            return ("fallback", self.fallback)
        return ("primary", self.primary)


class GateSpec(_Strict):
    """One acceptance criterion: metric, direction, thresholds and how to decide."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="gate id, unique in the phase (@pytest.mark.gate)"
    )
    description: str = Field(default="", description="what the gate claims, for the report")
    source: str = Field(default="", description="where the requirement comes from")
    metric: str = Field(description="estimator family: " + ", ".join(METRIC_DOMAINS))
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="metric options, validated per metric (see the *Params definitions): "
        "quantile needs q; pass_at_k takes k; pass_at_k_uplift needs k_hi; count takes of",
    )
    direction: Direction = Field(description="ge: metric ≥ threshold passes; le: ≤")
    tiers: Tiers = Field(description="thresholds: primary (required), fallback, stretch")
    alpha: float | None = Field(
        default=None, description="one-sided level of this gate (default: the phase's alpha)"
    )
    method: str | None = Field(default=None, description="CI method override for the metric")
    rule: DecisionRule = Field(
        default=DecisionRule.BOUND,
        description="bound: decide on the confidence bound; point: legacy, labelled so",
    )
    min_n: int | None = Field(
        default=None, ge=1, description="fewer items can never PASS (INCONCLUSIVE instead)"
    )
    paired_with: str | None = Field(
        default=None, description="another gate of the phase this one is paired with"
    )
    margin: float | None = Field(default=None, description="non-inferiority margin")
    unit: str = Field(default="", description="unit shown in the report (e.g. s)")
    sequential: bool = Field(
        default=False,
        description="looks go through a confidence sequence: the test may check the gate "
        "again on the anytime-valid estimate and only the final look decides",
    )
    #: metric ``mean`` only: the range every value lies in (default [0, 1]), or
    #: "unbounded" together with ``normality`` saying why a Student t bound is trusted
    bounds: tuple[float, float] | Literal["unbounded"] | None = None
    normality: str = ""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_DOMAINS:
            close = difflib.get_close_matches(value, METRIC_DOMAINS, n=1)
            hint = f" did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(METRIC_DOMAINS))
            raise ValueError(f"unknown metric;{hint} known metrics: {known}")
        return value

    @field_validator("alpha")
    @classmethod
    def _alpha_range(cls, value: float | None) -> float | None:
        if value is not None and not (0.0 < value < 0.5):
            raise ValueError("must be within (0, 0.5); typical values are 0.05 or 0.01")
        return value

    @model_validator(mode="after")
    def _method_and_bounds(self) -> GateSpec:
        allowed = METRIC_METHODS.get(self.metric, ())
        if self.method is not None and self.method.lower() not in allowed:
            why = (
                " (approximate intervals false-PASS above α for threshold claims; "
                "docs/statistics.md)"
                if self.method.lower() in ("wilson", "jeffreys")
                else ""
            )
            raise _FieldError(
                "method",
                self.method,
                f"is not a calibrated method for metric '{self.metric}'{why}; "
                f"use one of: {', '.join(allowed)} (or omit it for {allowed[0]})",
            )
        if self.bounds is not None and self.metric != "mean":
            raise _FieldError("bounds", self.bounds, "applies to metric 'mean' only; remove it")
        if self.bounds == "unbounded" and not self.normality.strip():
            raise _FieldError(
                "normality",
                self.normality,
                "must say why a Student t bound is trusted when bounds is 'unbounded' "
                "(e.g. 'per-run means of 500 steps; CLT'), or declare finite bounds [lo, hi]",
            )
        if isinstance(self.bounds, tuple):
            lo, hi = self.bounds
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise _FieldError("bounds", list(self.bounds), "must be finite [lo, hi], lo < hi")
        if self.metric == "mean" and self.method is not None:
            want = "t" if self.bounds == "unbounded" else "betting"
            if self.method.lower() != want:
                raise _FieldError(
                    "method",
                    self.method,
                    f"must be '{want}' (or omitted): a mean gate uses the betting interval on "
                    "declared bounds and Student t only with bounds: unbounded",
                )
        if self.normality.strip() and self.bounds != "unbounded":
            raise _FieldError("normality", self.normality, "applies only with bounds: unbounded")
        return self

    @model_validator(mode="after")
    def _params_of_the_metric(self) -> GateSpec:
        model = PARAM_MODELS.get(self.metric, NoParams)
        try:
            model.model_validate(self.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            value = self.params.get(key, "(missing)")
            fix = _param_fix(self.metric, key)
            raise _FieldError(
                f"params.{key}", value, f"{err['msg'].lower()} for metric '{self.metric}'; {fix}"
            ) from None
        return self

    @model_validator(mode="after")
    def _tiers_in_domain_and_ordered(self) -> GateSpec:
        lo, hi = METRIC_DOMAINS[self.metric]
        for name, value in self.tiers.items():
            if not (lo <= value <= hi) or math.isnan(value):
                raise _FieldError(
                    f"tiers.{name}",
                    value,
                    f"must be within [{_fmt(lo)}, {_fmt(hi)}] for metric '{self.metric}'",
                )
        ordered = [v for _, v in self.tiers.items()]  # stretch, primary, fallback
        ok = all(
            (a >= b) if self.direction is Direction.GE else (a <= b)
            for a, b in itertools.pairwise(ordered)
        )
        if not ok:
            want = (
                "stretch ≥ primary ≥ fallback"
                if self.direction is Direction.GE
                else ("stretch ≤ primary ≤ fallback")
            )
            raise _FieldError(
                "tiers", dict(self.tiers.items()), f"for direction '{self.direction}' need {want}"
            )
        return self


class PhaseSpec(_Strict):
    """All gates of one phase, decided together under one multiplicity policy."""

    phase: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="phase name (@pytest.mark.phase, --phase)"
    )
    description: str = Field(default="", description="what the phase is about")
    source: str = Field(default="", description="where its requirements come from")
    alpha: float = Field(default=0.05, description="one-sided level of each gate, in (0, 0.5)")
    multiplicity: Multiplicity = Field(
        default=Multiplicity.HOLM,
        description="holm (FWER), bh (FDR) or none (every gate at its own alpha)",
    )
    gates: list[GateSpec] = Field(min_length=1, description="the gates; every one must be decided")
    after: list[str] = Field(
        default_factory=list,
        description="phases whose tests run before this phase's when both are selected (this "
        "phase consumes their output; harness.phase_order)",
    )

    @field_validator("alpha")
    @classmethod
    def _alpha_range(cls, value: float) -> float:
        if not (0.0 < value < 0.5):
            raise ValueError("must be within (0, 0.5); typical values are 0.05 or 0.01")
        return value

    @model_validator(mode="after")
    def _unique_ids_and_pairs(self) -> PhaseSpec:
        seen: set[str] = set()
        for gate in self.gates:
            if gate.id in seen:
                raise _FieldError("id", gate.id, "is used by two gates; gate ids must be unique")
            seen.add(gate.id)
        for gate in self.gates:
            if gate.paired_with is not None and gate.paired_with not in seen:
                raise _FieldError(
                    "paired_with",
                    gate.paired_with,
                    f"names no gate in this phase; use one of: {', '.join(sorted(seen))}",
                )
        return self

    def gate(self, gate_id: str) -> GateSpec:
        for gate in self.gates:
            if gate.id == gate_id:
                return gate
        raise SpecError(
            f"phase '{self.phase}' has no gate '{gate_id}'; gates: "
            + ", ".join(g.id for g in self.gates)
        )

    def alpha_for(self, gate: GateSpec) -> float:
        """The gate's own α if set, else the phase's."""
        return gate.alpha if gate.alpha is not None else self.alpha


def _param_fix(metric: str, key: str) -> str:
    model = PARAM_MODELS.get(metric, NoParams)
    field = model.model_fields.get(key)
    what = field.description if field is not None and field.description else key
    return f"set params: {{{key}: ...}} ({what})"


class _FieldError(ValueError):
    """A validator error that knows which field and value it is about."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def load_phase(path: str | Path) -> PhaseSpec:
    """Load and validate one phase YAML; raise :class:`SpecError` naming what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read gate spec ({exc.strerror}); check the path") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{path}:{where}: not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(raw, dict):
        raise SpecError(
            f"{path}: top level must be a mapping with keys 'phase' and 'gates', "
            f"got {type(raw).__name__}"
        )
    try:
        return PhaseSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe(path, raw, exc)) from exc


def load_phases(directory: str | Path) -> list[PhaseSpec]:
    """Load every ``*.yaml`` in ``directory`` (sorted); phase names must be unique."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpecError(f"{directory}: gates directory not found; pass --gates-dir DIR")
    phases: dict[str, PhaseSpec] = {}
    for file in sorted(directory.glob("*.yaml")):
        spec = load_phase(file)
        if spec.phase in phases:
            raise SpecError(f"{file}: phase '{spec.phase}' is defined twice; rename one")
        phases[spec.phase] = spec
    return list(phases.values())


def _describe(path: Path, raw: dict[str, Any], exc: ValidationError) -> str:
    """Render pydantic errors as ``file: gate 'id': field=value problem; fix`` lines."""
    return "\n".join(_describe_one(path, raw, err) for err in exc.errors())


def _describe_one(path: Path, raw: dict[str, Any], err: Any) -> str:
    loc = list(err["loc"])
    where = ""
    model: type[BaseModel] = PhaseSpec
    if len(loc) >= 2 and loc[0] == "gates" and isinstance(loc[1], int):
        gates = raw.get("gates") or []
        index = loc[1]
        entry = gates[index] if index < len(gates) else None
        gate_id = entry.get("id") if isinstance(entry, dict) else None
        where = f" gate '{gate_id}':" if gate_id else f" gate #{index + 1}:"
        loc = loc[2:]
        model = GateSpec
    if loc and loc[0] == "tiers":
        model = Tiers
    field = ".".join(str(part) for part in loc)
    value: Any = err.get("input")
    message = str(err["msg"]).removeprefix("Value error, ")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        field = ".".join(part for part in (field, cause.field) if part)
        value, message = cause.value, cause.message
    if err["type"] == "extra_forbidden":
        known = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[-1]) if loc else "", known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(known)}"
        return f"{path}:{where} {field}: is not a known field; {hint}"
    if err["type"] == "missing":
        return f"{path}:{where} {field}: required field is missing; add it"
    if err["type"] == "enum":
        expected = (err.get("ctx") or {}).get("expected", "")
        message = f"is not allowed; use one of {expected}"
    return f"{path}:{where} {field}={value!r} {message}"
