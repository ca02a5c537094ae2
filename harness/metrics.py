"""Metric registry: the metric a gate names → estimator, test and n-needed planner.

A :class:`~harness.spec.GateSpec` names its metric (a key of
:data:`harness.spec.METRIC_DOMAINS`), options in ``params`` and a CI method in
``method``.  This module turns the gate's raw :class:`~harness.outcomes.Outcome`
list into an :class:`~harness.stats.Estimate`, a one-sided p-value (for Holm/BH
across a phase) and a sample-size plan, always through ``harness.stats``.

Alpha convention (docs/architecture.md): ``estimate_metric`` takes the
*two-sided* miscoverage (a gate at one-sided level α asks for ``2α``);
``n_needed`` takes the one-sided level.  Every input problem raises
:class:`~harness.errors.StatsError` naming the gate id, because a silently
coerced outcome list is how a gate passes on the wrong data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import stats

from harness.errors import StatsError
from harness.outcomes import Outcome
from harness.spec import Direction, GateSpec
from harness.stats import (
    betting,
    bootstrap,
    inversion,
    judged,
    mean,
    paired,
    passk,
    proportion,
    quantile,
    ratio,
    sequential,
    trend,
)
from harness.stats import power as power_mod
from harness.stats.estimate import Estimate, Sided

__all__ = [
    "METRICS",
    "SEQUENTIAL_METRICS",
    "advice",
    "estimate_metric",
    "estimate_sequential",
    "n_needed",
    "p_value",
]

_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers


def _fail(gate: GateSpec, message: str) -> StatsError:
    return StatsError(f"gate '{gate.id}' (metric '{gate.metric}'): {message}")


def _require(gate: GateSpec, outcomes: Sequence[Outcome], what: str = "outcomes") -> None:
    if isinstance(outcomes, Outcome) or not isinstance(outcomes, Sequence):
        raise _fail(
            gate,
            f"{what} must be a list of Outcome objects, got {type(outcomes).__name__}; "
            "pass a list (e.g. list(...) of a generator, [outcome] for one item)",
        )
    if len(outcomes) == 0:
        raise _fail(gate, f"no {what} to estimate from; the evaluator produced an empty list")
    for o in outcomes:
        if not isinstance(o, Outcome):
            raise _fail(gate, f"{what} must be Outcome objects, got {type(o).__name__}: {o!r}")


def _one_per_item(gate: GateSpec, outcomes: Sequence[Outcome]) -> None:
    """Estimators over independent items count each item once: a repeated ``item_id``
    would shrink the interval as if the repeats were new items."""
    _require(gate, outcomes)
    seen: dict[str, int] = {}
    for o in outcomes:
        seen[o.item_id] = seen.get(o.item_id, 0) + 1
    dup = [(i, c) for i, c in seen.items() if c > 1]
    if dup:
        shown = ", ".join(f"'{i}' ×{c}" for i, c in dup[:5])
        raise _fail(
            gate,
            f"outcomes: {len(dup)} item_id(s) occur more than once ({shown}); metric "
            f"'{gate.metric}' counts every outcome as an independent item — give one outcome "
            "per item (aggregate repeats first) or give independent repeats ids of their own",
        )


def _values(gate: GateSpec, outcomes: Sequence[Outcome], what: str = "outcomes") -> list[float]:
    _require(gate, outcomes, what)
    return _finite(gate, [(o.item_id, o.value) for o in outcomes], f"{what}: value")


def _finite(gate: GateSpec, pairs: Sequence[tuple[str, Any]], what: str) -> list[float]:
    """Numbers from (item id, value) pairs; every item whose value is not a finite number
    is named in one error (not a traceback from float())."""
    out: list[float] = []
    bad: list[str] = []
    for item_id, raw in pairs:
        try:
            v = float(raw) if not isinstance(raw, str | bytes) else math.nan
        except (TypeError, ValueError):
            v = math.nan
        if math.isnan(v) or math.isinf(v):
            bad.append(f"'{item_id}' ({raw!r})")
        out.append(v)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise _fail(
            gate,
            f"{what} is not a finite number for {len(bad)} of {len(pairs)} items: {shown}; "
            "the evaluator must map each result to a number (e.g. 1.0/0.0 for yes/no) and "
            "leave out or re-measure items it could not measure",
        )
    return out


def _binary(gate: GateSpec, outcomes: Sequence[Outcome], what: str = "outcomes") -> list[int]:
    values = _values(gate, outcomes, what)
    for o, v in zip(outcomes, values, strict=True):
        if v not in (0.0, 1.0):
            raise _fail(
                gate,
                f"{what}: item '{o.item_id}' has value {o.value!r} but metric '{gate.metric}' "
                "needs 0/1 outcomes (1 = event/success); map the evaluator's result to 0 or 1",
            )
    return [int(v) for v in values]


def _param(gate: GateSpec, name: str, default: Any = None, *, required: bool = False) -> Any:
    if name not in gate.params:
        if required:
            raise _fail(gate, f"params.{name} is required; add it to the gate spec")
        return default
    return gate.params[name]


def _int_param(gate: GateSpec, name: str, default: int | None = None) -> int:
    value = _param(gate, name, default, required=default is None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(gate, f"params.{name}={value!r} must be a positive integer")
    return value


def _wrap(gate: GateSpec, fn: Callable[[], _T]) -> _T:
    """Run a stats routine, prefixing any StatsError with the gate id."""
    try:
        return fn()
    except StatsError as exc:
        if str(exc).startswith(f"gate '{gate.id}'"):
            raise
        raise _fail(gate, str(exc)) from exc


def _check_alpha(gate: GateSpec, alpha: float, what: str) -> None:
    if not (0.0 < alpha < 1.0) or math.isnan(alpha):
        raise _fail(gate, f"{what}={alpha!r} must lie in (0, 1)")


# --------------------------------------------------------------------------- metrics


#: (gate, outcomes, threshold, baseline, greater, seed) → one-sided p-value
_Test = Callable[[GateSpec, Sequence[Outcome], float, Sequence[Outcome] | None, bool, int], float]


@dataclass(frozen=True)
class _Metric:
    """How one metric family estimates, tests and plans."""

    estimate: Callable[
        [GateSpec, Sequence[Outcome], float, Sequence[Outcome] | None, int], Estimate
    ]
    comparative: bool = False
    #: exact one-sided p-value (H1: metric > threshold when ``greater``); None → CI inversion
    test: _Test | None = None
    #: n-needed planner; None → normal approximation from the interval width
    plan: Callable[[GateSpec, Estimate, float, float, float], int | None] | None = None
    #: extra advice for an INCONCLUSIVE verdict (threshold, one-sided α); None → none
    advise: Callable[[Estimate, float, float], str | None] | None = None


def _est_proportion(
    gate: GateSpec, outcomes: Sequence[Outcome], alpha: float, _b: Sequence[Outcome] | None, _s: int
) -> Estimate:
    _one_per_item(gate, outcomes)
    xs = _binary(gate, outcomes)
    return proportion.proportion_estimate(sum(xs), len(xs), alpha=alpha, method=gate.method)


def _test_proportion(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    threshold: float,
    _b: Sequence[Outcome] | None,
    greater: bool,
    _seed: int = 0,
) -> float:
    xs = _binary(gate, outcomes)
    return proportion.binomial_p_value(sum(xs), len(xs), threshold=threshold, greater=greater)


def _plan_proportion(
    gate: GateSpec, estimate: Estimate, threshold: float, alpha: float, pw: float
) -> int | None:
    del gate
    return power_mod.n_for_proportion(estimate.value, threshold, alpha=alpha, power=pw)


def _count_value(gate: GateSpec, outcomes: Sequence[Outcome]) -> float:
    of = _param(gate, "of", "sum")
    if of == "n":
        _require(gate, outcomes)
        return float(len(outcomes))
    if of == "sum":
        return float(sum(_values(gate, outcomes)))
    raise _fail(gate, f"params.of={of!r} must be 'sum' (add up values) or 'n' (count items)")


def _est_count(
    gate: GateSpec, outcomes: Sequence[Outcome], alpha: float, _b: Sequence[Outcome] | None, _s: int
) -> Estimate:
    value = _count_value(gate, outcomes)
    return Estimate(
        value=value,
        lo=value,
        hi=value,
        n=len(outcomes),
        method="exact count",
        alpha=alpha,
        sided=Sided.TWO,
        extra={"of": _param(gate, "of", "sum")},
    )


def _test_count(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    threshold: float,
    _b: Sequence[Outcome] | None,
    greater: bool,
    _seed: int = 0,
) -> float:
    value = _count_value(gate, outcomes)
    ok = value >= threshold if greater else value <= threshold  # as the bound rule
    return 0.0 if ok else 1.0


def _plan_none(
    gate: GateSpec, estimate: Estimate, threshold: float, alpha: float, pw: float
) -> int | None:
    del gate, estimate, threshold, alpha, pw
    return None


def _est_pass_at_k(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    _b: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    k = _int_param(gate, "k", 1)
    tasks = _by_task(gate, outcomes)
    return passk.pass_at_k_estimate(
        tasks,
        k=k,
        alpha=alpha,
        seed=seed,
        method=gate.method,
        n_resamples=_int_param(gate, "resamples", passk.DEFAULT_RESAMPLES),
    )


def _by_task(
    gate: GateSpec, outcomes: Sequence[Outcome], what: str = "outcomes"
) -> dict[str, list[int]]:
    xs = _binary(gate, outcomes, what)
    tasks: dict[str, list[int]] = {}
    for o, x in zip(outcomes, xs, strict=True):
        task = o.cluster if o.cluster is not None else o.item_id
        tasks.setdefault(task, []).append(x)
    return tasks


def _est_uplift(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    _b: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    k_hi = _int_param(gate, "k_hi")
    k_lo = _int_param(gate, "k_lo", 1)
    if k_hi <= k_lo:
        raise _fail(gate, f"params.k_hi={k_hi} must be larger than params.k_lo={k_lo}")
    tasks = _by_task(gate, outcomes)
    return passk.pass_at_k_uplift_estimate(
        tasks,
        k_hi=k_hi,
        k_lo=k_lo,
        alpha=alpha,
        seed=seed,
        method=gate.method,
        n_resamples=_int_param(gate, "resamples", passk.DEFAULT_RESAMPLES),
    )


def _is_plain_proportion(gate: GateSpec, outcomes: Sequence[Outcome]) -> bool:
    """pass@1 with one sample per task is a binomial proportion (exact methods apply)."""
    if _param(gate, "k", 1) != 1:
        return False
    tasks = _by_task(gate, outcomes)
    return all(len(s) == 1 for s in tasks.values())


def _test_pass_at_k(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    threshold: float,
    baseline: Sequence[Outcome] | None,
    greater: bool,
    seed: int = 0,
) -> float:
    if _is_plain_proportion(gate, outcomes):
        return _test_proportion(gate, outcomes, threshold, baseline, greater)
    return _invert(gate, outcomes, threshold, baseline, greater, seed)


def _plan_pass_at_k(
    gate: GateSpec, estimate: Estimate, threshold: float, alpha: float, pw: float
) -> int | None:
    if estimate.extra.get("samples") == estimate.n and _param(gate, "k", 1) == 1:
        return power_mod.n_for_proportion(estimate.value, threshold, alpha=alpha, power=pw)
    return power_mod.n_from_interval(estimate, threshold, alpha=alpha, power=pw)


def _invert(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    threshold: float,
    baseline: Sequence[Outcome] | None,
    greater: bool,
    seed: int,
) -> float:
    """p-value by inverting the gate's own interval, with the seed the gate decided with."""

    def at(a: float) -> Estimate:
        return estimate_metric(gate, outcomes, alpha=a, baseline=baseline, seed=seed)

    return inversion.p_value_by_inversion(at, threshold=threshold, greater=greater)


# ---- comparative metrics: pairing by item id


def _index(gate: GateSpec, outcomes: Sequence[Outcome], what: str) -> dict[str, float]:
    values = _values(gate, outcomes, what)
    out: dict[str, float] = {}
    for o, v in zip(outcomes, values, strict=True):
        if o.item_id in out:
            raise _fail(
                gate,
                f"{what}: item_id '{o.item_id}' occurs twice; paired metrics need one "
                "outcome per item (aggregate repeated samples first)",
            )
        out[o.item_id] = v
    return out


def _pair(
    gate: GateSpec, outcomes: Sequence[Outcome], baseline: Sequence[Outcome] | None
) -> tuple[np.ndarray, np.ndarray]:
    assert baseline is not None  # checked by estimate_metric
    cand = _index(gate, outcomes, "candidate outcomes")
    base = _index(gate, baseline, "baseline outcomes")
    only_c = sorted(set(cand) - set(base))
    only_b = sorted(set(base) - set(cand))
    if only_c or only_b:

        def show(ids: list[str]) -> str:
            more = f" … (+{len(ids) - 10} more)" if len(ids) > 10 else ""
            return ", ".join(ids[:10]) + more if ids else "none"

        raise _fail(
            gate,
            f"candidate and baseline are not paired: {len(only_c)} item(s) only in the "
            f"candidate ({show(only_c)}), {len(only_b)} only in the baseline ({show(only_b)}); "
            "evaluate both subjects on the same item ids",
        )
    ids = sorted(cand)
    return (
        np.array([cand[i] for i in ids], dtype=float),
        np.array([base[i] for i in ids], dtype=float),
    )


def _paired_mode(
    gate: GateSpec, outcomes: Sequence[Outcome], baseline: Sequence[Outcome] | None
) -> bool:
    """Pair when the item ids match; independent when they are disjoint."""
    assert baseline is not None
    forced = _param(gate, "paired")
    if forced is not None:
        if not isinstance(forced, bool):
            raise _fail(gate, f"params.paired={forced!r} must be true or false")
        return forced
    c = {o.item_id for o in outcomes}
    b = {o.item_id for o in baseline}
    if c == b:
        return True
    if not (c & b):
        return False
    raise _fail(
        gate,
        f"candidate and baseline share {len(c & b)} of {len(c | b)} item ids: either evaluate "
        "both on the same items (paired) or on disjoint ones (independent), or set "
        "params.paired explicitly",
    )


def _est_paired_difference(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    baseline: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    c, b = _pair(gate, outcomes, baseline)
    if not (np.all(np.isin(c, (0.0, 1.0))) and np.all(np.isin(b, (0.0, 1.0)))):
        raise _fail(
            gate,
            "a paired_difference gate needs 0/1 outcomes: on continuous scores the pair "
            "bootstrap false-PASSed 6.2 % at n = 50 (skewed scores, harness calibrate); gate "
            "metric 'mean' on the per-item differences with declared `bounds` instead "
            "(finite-sample betting interval)",
        )
    return paired.paired_difference_estimate(
        c,
        b,
        alpha=alpha,
        seed=seed,
        method=gate.method,
        n_resamples=_int_param(gate, "resamples", bootstrap.DEFAULT_RESAMPLES),
    )


def _ratio_est(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    baseline: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    if _paired_mode(gate, outcomes, baseline):
        c, b = _pair(gate, outcomes, baseline)
        return ratio.ratio_paired(
            c,
            b,
            alpha=alpha,
            seed=seed,
            method=gate.method,
            n_resamples=_int_param(gate, "resamples", bootstrap.DEFAULT_RESAMPLES),
        )
    assert baseline is not None
    c = np.array(_binary(gate, outcomes, "candidate outcomes"), dtype=float)
    b = np.array(_binary(gate, baseline, "baseline outcomes"), dtype=float)
    return ratio.ratio_independent(c, b, alpha=alpha)


def _est_ratio(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    baseline: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    return _ratio_est(gate, outcomes, alpha, baseline, seed)


def _est_reduction(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    baseline: Sequence[Outcome] | None,
    seed: int,
) -> Estimate:
    return ratio.relative_reduction(_ratio_est(gate, outcomes, alpha, baseline, seed))


def _test_ratio_like(reduction: bool) -> _Test:
    def test(
        gate: GateSpec,
        outcomes: Sequence[Outcome],
        threshold: float,
        baseline: Sequence[Outcome] | None,
        greater: bool,
        seed: int = 0,
    ) -> float:
        if baseline is None:
            raise _fail(gate, "is comparative and needs baseline outcomes; pass baseline=...")
        ratio0, larger = (1.0 - threshold, not greater) if reduction else (threshold, greater)
        if _paired_mode(gate, outcomes, baseline) or ratio0 <= 0:
            return _invert(gate, outcomes, threshold, baseline, greater, seed)
        c = np.array(_binary(gate, outcomes, "candidate outcomes"), dtype=float)
        b = np.array(_binary(gate, baseline, "baseline outcomes"), dtype=float)
        return ratio.ratio_p_value_independent(c, b, ratio0=ratio0, larger=larger)

    return test


def _est_quantile(
    gate: GateSpec, outcomes: Sequence[Outcome], alpha: float, _b: Sequence[Outcome] | None, _s: int
) -> Estimate:
    q = _param(gate, "q", required=True)
    if isinstance(q, bool) or not isinstance(q, int | float) or not (0.0 < float(q) < 1.0):
        raise _fail(gate, f"params.q={q!r} must be a number in (0, 1), e.g. 0.95")
    _one_per_item(gate, outcomes)
    has_latency = [o.latency_s is not None for o in outcomes]
    if any(has_latency) and not all(has_latency):
        missing = [o.item_id for o in outcomes if o.latency_s is None][:5]
        raise _fail(
            gate,
            f"some outcomes have latency_s and some do not (e.g. {', '.join(missing)}); "
            "record latency for every item or for none",
        )
    if all(has_latency):
        xs = _finite(gate, [(o.item_id, o.latency_s) for o in outcomes], "outcomes: latency_s")
        source = "latency_s"
    else:
        xs = _values(gate, outcomes)
        source = "value"
    est = quantile.quantile_estimate(np.array(xs), q=float(q), alpha=alpha)
    outliers = est.extra.get("outlier_indices", [])
    return Estimate(
        value=est.value,
        lo=est.lo,
        hi=est.hi,
        n=est.n,
        method=est.method,
        alpha=est.alpha,
        sided=est.sided,
        extra={
            **est.extra,
            "source": source,
            "outlier_items": [outcomes[i].item_id for i in outliers],
        },
    )


def _mean_range(gate: GateSpec) -> tuple[float, float] | None:
    """The declared value range of a ``mean`` gate; None when declared unbounded."""
    if gate.bounds == "unbounded":
        return None
    return gate.bounds if gate.bounds is not None else (0.0, 1.0)


def _est_mean(
    gate: GateSpec, outcomes: Sequence[Outcome], alpha: float, _b: Sequence[Outcome] | None, _s: int
) -> Estimate:
    _one_per_item(gate, outcomes)
    xs = np.array(_values(gate, outcomes))
    rng = _mean_range(gate)
    if rng is None:
        est = mean.mean_estimate(xs, alpha=alpha)
        return Estimate(
            value=est.value,
            lo=est.lo,
            hi=est.hi,
            n=est.n,
            method=est.method,
            alpha=est.alpha,
            sided=est.sided,
            extra={**est.extra, "normality": gate.normality},
        )
    bad = [o.item_id for o, x in zip(outcomes, xs, strict=True) if not rng[0] <= x <= rng[1]]
    if bad:
        raise _fail(
            gate,
            f"items {', '.join(bad[:5])} have values outside the declared range "
            f"[{rng[0]:g}, {rng[1]:g}]; fix the evaluator, or set `bounds: [lo, hi]` to the "
            "range the values live in (`bounds: unbounded` plus `normality:` for a t bound)",
        )
    return betting.betting_mean_estimate(xs, alpha=alpha, lower=rng[0], upper=rng[1])


def _test_mean(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    threshold: float,
    baseline: Sequence[Outcome] | None,
    greater: bool,
    seed: int = 0,
) -> float:
    if _mean_range(gate) is not None:  # betting interval: invert it (deterministic)
        return _invert(gate, outcomes, threshold, baseline, greater, seed)
    xs = np.array(_values(gate, outcomes))
    if len(xs) < 2:
        raise _fail(gate, f"a mean test needs ≥ 2 values, got {len(xs)}")
    if float(np.std(xs)) == 0.0:
        ok = xs[0] >= threshold if greater else xs[0] <= threshold
        return 0.0 if ok else 1.0
    res = stats.ttest_1samp(xs, threshold, alternative="greater" if greater else "less")
    return float(res.pvalue)


def _est_trend(
    gate: GateSpec, outcomes: Sequence[Outcome], alpha: float, _b: Sequence[Outcome] | None, _s: int
) -> Estimate:
    return trend.trend_estimate(np.array(_values(gate, outcomes)), alpha=alpha, method=gate.method)


# ---- judged rates: outcomes labelled by an imperfect judge, corrected for its error


def _judge_counts(gate: GateSpec, calibration: Sequence[Outcome]) -> judged.JudgeCounts:
    """Judge-vs-human counts from calibration outcomes (value = judge flagged, raw label)."""
    flags = _binary(gate, calibration, "judge calibration outcomes")
    tp = pos = tn = neg = 0
    for o, flag in zip(calibration, flags, strict=True):
        label = o.raw.get("label")
        if label not in (0, 1) or isinstance(label, bool):
            raise _fail(
                gate,
                f"judge calibration outcome '{o.item_id}' has raw label {label!r}; each "
                "labelled row needs raw={'label': 0 or 1} (the human label)",
            )
        if label == 1:
            pos, tp = pos + 1, tp + flag
        else:
            neg, tn = neg + 1, tn + (1 - flag)
    return judged.JudgeCounts(true_pos=tp, positives=pos, true_neg=tn, negatives=neg)


def _est_judged(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    alpha: float,
    calibration: Sequence[Outcome] | None,
    _s: int,
) -> Estimate:
    assert calibration is not None  # checked by estimate_metric (comparative)
    xs = _binary(gate, outcomes)
    counts = _judge_counts(gate, calibration)
    return judged.judged_rate_estimate(sum(xs), len(xs), counts, alpha=alpha, method=gate.method)


def _plan_judged(
    gate: GateSpec, estimate: Estimate, threshold: float, alpha: float, pw: float
) -> int | None:
    del gate
    return judged.judged_n_needed(estimate, threshold, alpha=alpha, power=pw)


def _advise_judged(estimate: Estimate, threshold: float, alpha: float) -> str | None:
    return judged.judged_advice(estimate, threshold, alpha=alpha)


METRICS: dict[str, _Metric] = {
    "proportion": _Metric(_est_proportion, test=_test_proportion, plan=_plan_proportion),
    "count": _Metric(_est_count, test=_test_count, plan=_plan_none),
    "pass_at_k": _Metric(_est_pass_at_k, test=_test_pass_at_k, plan=_plan_pass_at_k),
    "pass_at_k_uplift": _Metric(_est_uplift),
    "paired_difference": _Metric(_est_paired_difference, comparative=True),
    "relative_reduction": _Metric(
        _est_reduction, comparative=True, test=_test_ratio_like(reduction=True)
    ),
    "ratio": _Metric(_est_ratio, comparative=True, test=_test_ratio_like(reduction=False)),
    "quantile": _Metric(_est_quantile),
    "mean": _Metric(_est_mean, test=_test_mean),
    "trend_slope": _Metric(_est_trend),
    # baseline = the judge's held-out calibration outcomes (see _judge_counts)
    "judged_proportion": _Metric(
        _est_judged, comparative=True, plan=_plan_judged, advise=_advise_judged
    ),
}


def _metric(gate: GateSpec) -> _Metric:
    try:
        return METRICS[gate.metric]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise _fail(
            gate, f"no estimator is registered for this metric yet; registered: {known}"
        ) from None


# --------------------------------------------------------------------------- public API


def estimate_metric(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    *,
    alpha: float,
    baseline: Sequence[Outcome] | None = None,
    seed: int = 0,
) -> Estimate:
    """Estimate ``gate``'s metric from ``outcomes`` with a two-sided ``1−alpha`` interval.

    ``alpha`` is the two-sided miscoverage: a gate decided at one-sided level α
    passes ``2α``.  ``baseline`` is required for comparative metrics (paired by
    ``item_id``).  Deterministic given ``seed`` (bootstrap-based metrics).
    """
    impl = _metric(gate)
    _check_alpha(gate, alpha, "alpha")
    if impl.comparative and baseline is None:
        raise _fail(
            gate,
            "is comparative and needs baseline outcomes; pass baseline=... "
            f"(the spec's paired_with gate is {gate.paired_with!r})",
        )
    if not impl.comparative and baseline is not None:
        raise _fail(gate, "is not comparative; do not pass baseline outcomes")
    return _wrap(gate, lambda: impl.estimate(gate, outcomes, alpha, baseline, seed))


def p_value(
    gate: GateSpec,
    outcomes: Sequence[Outcome],
    *,
    threshold: float,
    baseline: Sequence[Outcome] | None = None,
    seed: int = 0,
) -> float:
    """One-sided p-value for H0 "the metric is on the wrong side of ``threshold``".

    For a ``ge`` gate H0 is metric ≤ threshold; for ``le`` it is metric ≥
    threshold.  Uses the metric's own exact test where one exists (binomial for
    proportions), otherwise inverts the metric's confidence interval: the
    p-value is half the smallest two-sided α whose interval excludes the
    threshold on the claimed side.  Pass the ``seed`` the gate's estimate used
    (``--harness-seed``): then p ≤ α exactly when the gate's bound clears.
    """
    impl = _metric(gate)
    if math.isnan(threshold):
        raise _fail(gate, "threshold is NaN")
    greater = gate.direction is Direction.GE
    if impl.test is not None:
        test = impl.test
        return float(_wrap(gate, lambda: test(gate, outcomes, threshold, baseline, greater, seed)))

    return _invert(gate, outcomes, threshold, baseline, greater, seed)


def n_needed(
    gate: GateSpec,
    estimate: Estimate,
    *,
    threshold: float,
    alpha: float,
    power: float = 0.8,
) -> int | None:
    """Items that would make the gate decidable, assuming the estimate is the truth.

    ``alpha`` is the gate's one-sided level.  Proportions use the exact binomial
    planner; deterministic metrics return None (more items change nothing);
    the rest use a normal approximation from the observed interval width.
    Returns None when the estimate sits exactly on the threshold.
    """
    impl = _metric(gate)
    if not (0.0 < alpha < 0.5):
        raise _fail(gate, f"alpha={alpha!r} must be a one-sided level in (0, 0.5)")
    plan = impl.plan or _plan_generic
    return _wrap(gate, lambda: plan(gate, estimate, threshold, alpha, power))


def advice(gate: GateSpec, estimate: Estimate, *, threshold: float, alpha: float) -> str | None:
    """Metric-specific advice for an INCONCLUSIVE verdict beyond "n items" (or None).

    Judged rates say what judge quality or labelled-set size would decide the gate.
    ``alpha`` is the gate's one-sided level.
    """
    impl = _metric(gate)
    if impl.advise is None:
        return None
    advise = impl.advise
    return _wrap(gate, lambda: advise(estimate, threshold, alpha))


def _plan_generic(
    gate: GateSpec, estimate: Estimate, threshold: float, alpha: float, pw: float
) -> int | None:
    del gate
    return power_mod.n_from_interval(estimate, threshold, alpha=alpha, power=pw)


#: metrics whose per-item values are bounded in [0, 1] and exchangeable in order,
#: so the betting confidence sequence applies
SEQUENTIAL_METRICS = frozenset({"proportion", "pass_at_k", "mean"})


def estimate_sequential(gate: GateSpec, outcomes: Sequence[Outcome], *, alpha: float) -> Estimate:
    """Anytime-valid estimate: the betting confidence sequence after ``outcomes`` in order.

    Valid however the caller chose when to stop looking (e.g. after every
    batch), unlike :func:`estimate_metric`'s fixed-n interval.  ``alpha`` is the
    two-sided miscoverage, as everywhere.  Supported for
    :data:`SEQUENTIAL_METRICS` with values in [0, 1]; pass@k only for k = 1 with
    one sample per task (otherwise samples of a task are not independent items).
    """
    _check_alpha(gate, alpha, "alpha")
    if gate.metric not in SEQUENTIAL_METRICS:
        raise _fail(
            gate,
            "sequential mode supports metrics "
            + ", ".join(sorted(SEQUENTIAL_METRICS))
            + "; run this gate at fixed n",
        )
    if gate.metric == "pass_at_k" and not _is_plain_proportion(gate, outcomes):
        raise _fail(gate, "sequential pass@k needs k=1 and exactly one sample per task")
    xs = _values(gate, outcomes)
    bad = [o.item_id for o, x in zip(outcomes, xs, strict=True) if not 0.0 <= x <= 1.0]
    if bad:
        raise _fail(
            gate,
            f"sequential mode needs values in [0, 1]; items {', '.join(bad[:5])} are outside",
        )
    cs = sequential.ConfidenceSequence(alpha=alpha)
    cs.extend(xs)
    return cs.estimate()
