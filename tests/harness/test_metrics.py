import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from harness.errors import StatsError
from harness.metrics import METRICS, estimate_metric, n_needed, p_value
from harness.outcomes import Outcome
from harness.spec import METRIC_DOMAINS, GateSpec


def gate(metric: str, direction: str = "ge", primary: float = 0.5, **kw: Any) -> GateSpec:
    return GateSpec(
        id=f"g_{metric}",
        metric=metric,
        direction=direction,  # type: ignore[arg-type]
        tiers={"primary": primary},
        **kw,
    )  # type: ignore[arg-type]


def binary(values: list[int], prefix: str = "i") -> list[Outcome]:
    return [Outcome(item_id=f"{prefix}{i}", value=v) for i, v in enumerate(values)]


def test_every_metric_domain_has_an_estimator() -> None:
    assert set(METRICS) == set(METRIC_DOMAINS)


def test_proportion_zero_events_and_errors() -> None:
    g = gate("proportion", "le", 0.001)
    est = estimate_metric(g, binary([0] * 2995), alpha=0.1)
    assert est.hi <= 0.001 and est.method == "Clopper–Pearson exact"
    assert p_value(g, binary([0] * 2995), threshold=0.001) < 0.05
    small = estimate_metric(g, binary([0] * 500), alpha=0.1)
    assert n_needed(g, small, threshold=0.001, alpha=0.05) == 2995
    with pytest.raises(StatsError, match=r"gate 'g_proportion'.*no outcomes"):
        estimate_metric(g, [], alpha=0.1)
    with pytest.raises(StatsError, match=r"item 'i1' has value 2"):
        estimate_metric(g, binary([0, 2]), alpha=0.1)
    with pytest.raises(StatsError, match=r"finite number for 1 of 1 items: 'x' \(nan\)"):
        estimate_metric(g, [Outcome("x", math.nan)], alpha=0.1)
    with pytest.raises(StatsError, match=r"Outcome objects"):
        estimate_metric(g, [0.0], alpha=0.1)  # type: ignore[list-item]
    with pytest.raises(StatsError, match=r"alpha"):
        estimate_metric(g, binary([0]), alpha=1.2)
    with pytest.raises(StatsError, match=r"not comparative"):
        estimate_metric(g, binary([0]), alpha=0.1, baseline=binary([0]))
    with pytest.raises(ValidationError, match=r"not a calibrated method"):
        gate("proportion", method="wald")
    with pytest.raises(StatsError, match=r"NaN"):
        p_value(g, binary([0]), threshold=math.nan)
    with pytest.raises(StatsError, match=r"one-sided level"):
        n_needed(g, small, threshold=0.001, alpha=0.6)
    for approximate in ("wilson", "jeffreys"):  # refused for threshold decisions
        with pytest.raises(ValidationError, match=r"approximate intervals false-PASS"):
            gate("proportion", method=approximate)


def test_count() -> None:
    g = gate("count", "le", 0)
    outs = binary([0, 1, 1])
    est = estimate_metric(g, outs, alpha=0.1)
    assert est.value == est.lo == est.hi == 2.0 and est.method == "exact count"
    n_items = estimate_metric(gate("count", params={"of": "n"}), outs, alpha=0.1)
    assert n_items.value == 3.0
    assert p_value(g, outs, threshold=0) == 1.0
    assert p_value(gate("count"), outs, threshold=1) == 0.0
    assert p_value(g, outs, threshold=2) == 0.0  # a count on the threshold passes, as in decide()
    assert n_needed(g, est, threshold=0, alpha=0.05) is None
    with pytest.raises(ValueError, match=r"'sum' or 'n' for metric 'count'; set params"):
        gate("count", params={"of": "max"})  # rejected when the spec loads


def _samples(rng: np.random.Generator, tasks: int, per: int, p: float) -> list[Outcome]:
    return [
        Outcome(f"t{t}-s{s}", float(rng.random() < p), cluster=f"t{t}")
        for t in range(tasks)
        for s in range(per)
    ]


def test_pass_at_k_and_uplift() -> None:
    rng = np.random.default_rng(0)
    outs = _samples(rng, 60, 10, 0.3)
    g = gate("pass_at_k", params={"k": 5}, primary=0.5)
    est = estimate_metric(g, outs, alpha=0.1, seed=1)
    assert est.lo > 0.5 and "task betting" in est.method  # was the task BCa bootstrap
    assert estimate_metric(g, outs, alpha=0.1, seed=1) == est
    p = p_value(g, outs, threshold=0.5)
    assert p < 0.05
    assert n_needed(g, est, threshold=0.9, alpha=0.05) is not None
    one = [Outcome(f"t{t}", float(t % 2), cluster=f"t{t}") for t in range(40)]
    g1 = gate("pass_at_k", primary=0.3)
    e1 = estimate_metric(g1, one, alpha=0.1)
    assert e1.method.startswith("Clopper–Pearson")
    assert p_value(g1, one, threshold=0.3) == pytest.approx(
        p_value(gate("proportion", primary=0.3), one, threshold=0.3)
    )
    assert n_needed(g1, e1, threshold=0.45, alpha=0.05) is not None
    with pytest.raises(StatsError, match=r"task 't0'.*n=1"):
        estimate_metric(gate("pass_at_k", params={"k": 2}), one, alpha=0.1)
    with pytest.raises(ValueError, match=r"greater than or equal to 1 for metric 'pass_at_k'"):
        gate("pass_at_k", params={"k": 0})
    up = gate("pass_at_k_uplift", params={"k_hi": 5, "k_lo": 1}, primary=0.1)
    ue = estimate_metric(up, outs, alpha=0.1)
    assert ue.lo > 0.1 and ue.extra["p_value_uplift_gt_0"] < 0.01
    assert p_value(up, outs, threshold=0.1) < 0.05
    with pytest.raises(ValueError, match=r"required for metric 'pass_at_k_uplift'.*k_hi"):
        gate("pass_at_k_uplift", primary=0.1)
    with pytest.raises(StatsError, match=r"must be larger"):
        estimate_metric(
            gate("pass_at_k_uplift", params={"k_hi": 1, "k_lo": 1}, primary=0.1), outs, alpha=0.1
        )


def test_paired_difference_pairs_by_item_id() -> None:
    rng = np.random.default_rng(1)
    base = (rng.random(200) < 0.5).astype(int)
    cand = np.maximum(base, rng.random(200) < 0.3).astype(int)
    g = gate("paired_difference", primary=0.05)
    c_outs = binary(list(cand))
    b_outs = binary(list(base))[::-1]  # order must not matter
    est = estimate_metric(g, c_outs, alpha=0.1, baseline=b_outs)
    assert est.value == pytest.approx(cand.mean() - base.mean())
    assert est.extra["p_candidate_higher"] < 1e-6
    assert p_value(g, c_outs, threshold=0.05, baseline=b_outs) < 0.05
    with pytest.raises(StatsError, match=r"needs baseline"):
        estimate_metric(g, c_outs, alpha=0.1)
    with pytest.raises(StatsError, match=r"1 item\(s\) only in the candidate \(i199\)"):
        estimate_metric(g, c_outs, alpha=0.1, baseline=b_outs[1:])
    with pytest.raises(StatsError, match=r"occurs twice"):
        estimate_metric(g, [*c_outs, c_outs[0]], alpha=0.1, baseline=b_outs)
    scores = [Outcome(o.item_id, o.value + 0.5) for o in c_outs]
    with pytest.raises(StatsError, match=r"needs 0/1 outcomes.*false-PASSed 6.2 %"):
        estimate_metric(g, scores, alpha=0.1, baseline=b_outs)


def test_mean_on_bounded_values_uses_the_betting_interval() -> None:
    rng = np.random.default_rng(5)
    outs = [Outcome(f"i{i}", float(v)) for i, v in enumerate(rng.beta(1, 9, 60))]
    g = gate("mean", "le", 0.4)  # similarity in [0, 1] (the default range)
    est = estimate_metric(g, outs, alpha=0.1)
    assert est.method.startswith("betting CI") and est.hi < 0.4 and est.extra["range"] == [0, 1]
    p = p_value(g, outs, threshold=est.hi)
    assert p <= 0.05 + 1e-6  # the inverted interval agrees with the gate's own bound
    scaled = gate("mean", "le", 40.0, bounds=(0.0, 100.0))
    outs100 = [Outcome(o.item_id, 100 * o.value) for o in outs]
    e100 = estimate_metric(scaled, outs100, alpha=0.1)
    assert e100.hi == pytest.approx(100 * est.hi, rel=1e-6)
    with pytest.raises(
        StatsError, match=r"items i0 have values outside the declared range \[0, 1\]"
    ):
        estimate_metric(g, [Outcome("i0", 1.5), *outs[1:]], alpha=0.1)
    with pytest.raises(ValidationError, match=r"why a Student t bound is trusted"):
        gate("mean", bounds="unbounded")
    with pytest.raises(ValidationError, match=r"must be 'betting'"):
        gate("mean", method="t")
    with pytest.raises(ValidationError, match=r"metric 'mean' only"):
        gate("proportion", bounds=(0.0, 1.0))


def test_p_value_uses_the_gates_seed() -> None:
    """The Holm p-value inverts the interval the gate decided on, bootstrap seed included."""
    rng = np.random.default_rng(6)
    outs = _samples(rng, 40, 6, 0.4)
    g = gate("pass_at_k", params={"k": 3}, primary=0.5)
    for seed in (7, 11):
        est = estimate_metric(g, outs, alpha=0.1, seed=seed)
        assert p_value(g, outs, threshold=est.lo, seed=seed) <= 0.05 + 1e-6
        assert p_value(g, outs, threshold=est.lo + 1e-3, seed=seed) > 0.05


def test_ratio_and_relative_reduction_paired_and_independent() -> None:
    rng = np.random.default_rng(2)
    base = (rng.random(400) < 0.6).astype(int)
    cand = (base * (rng.random(400) < 0.3)).astype(int)
    red = gate("relative_reduction", primary=0.5)
    paired = estimate_metric(red, binary(list(cand)), alpha=0.1, baseline=binary(list(base)))
    assert paired.extra["paired"] is True and paired.lo > 0.5
    assert p_value(red, binary(list(cand)), threshold=0.5, baseline=binary(list(base))) < 0.05
    indep_c, indep_b = binary(list(cand), "c"), binary(list(base), "b")
    ind = estimate_metric(red, indep_c, alpha=0.1, baseline=indep_b)
    assert ind.extra["paired"] is False and ind.lo > 0.5
    assert p_value(red, indep_c, threshold=0.5, baseline=indep_b) < 0.05
    keep = gate("ratio", primary=0.9)
    same = binary(list(base))
    r = estimate_metric(keep, same, alpha=0.1, baseline=binary(list(base)))
    assert r.value == 1.0
    pr = p_value(keep, binary(list(base), "c"), threshold=0.9, baseline=binary(list(base), "b"))
    assert 0 < pr < 0.5
    forced = gate("ratio", primary=0.9, params={"paired": False})
    assert estimate_metric(forced, same, alpha=0.1, baseline=same).extra["paired"] is False
    with pytest.raises(StatsError, match=r"params.paired"):
        estimate_metric(gate("ratio", params={"paired": "yes"}), same, alpha=0.1, baseline=same)
    with pytest.raises(StatsError, match=r"share 1 of"):
        estimate_metric(keep, binary([1, 0]), alpha=0.1, baseline=binary([1], "i"))
    with pytest.raises(StatsError, match=r"needs baseline"):
        p_value(keep, same, threshold=0.9)


def test_quantile_latency_and_values() -> None:
    rng = np.random.default_rng(3)
    lat = rng.exponential(1.0, 300)
    outs = [Outcome(f"i{i}", 1.0, latency_s=float(v)) for i, v in enumerate(lat)]
    g = gate("quantile", "le", 5.0, params={"q": 0.95})
    est = estimate_metric(g, outs, alpha=0.1)
    assert est.extra["source"] == "latency_s"
    assert est.value == pytest.approx(np.quantile(lat, 0.95))
    assert est.hi < 5.0 and len(est.extra["outlier_items"]) == est.extra["outliers"]
    assert p_value(g, outs, threshold=5.0) < 0.05
    vals = estimate_metric(g, [Outcome(f"i{i}", float(v)) for i, v in enumerate(lat)], alpha=0.1)
    assert vals.extra["source"] == "value" and vals.value == est.value
    with pytest.raises(ValueError, match=r"required for metric 'quantile'; set params: \{q"):
        gate("quantile")
    with pytest.raises(ValueError, match=r"less than 1 for metric 'quantile'"):
        gate("quantile", params={"q": 2})
    with pytest.raises(StatsError, match=r"latency_s"):
        estimate_metric(g, [*outs, Outcome("x", 1.0)], alpha=0.1)


def test_mean_and_trend() -> None:
    unbounded: dict[str, Any] = {"bounds": "unbounded", "normality": "test"}
    rng = np.random.default_rng(4)
    outs = [Outcome(f"i{i}", float(v)) for i, v in enumerate(rng.normal(1.0, 0.5, 100))]
    g = gate("mean", primary=0.8, bounds="unbounded", normality="simulated normal values")
    est = estimate_metric(g, outs, alpha=0.1)
    assert est.lo > 0.8 and est.method == "Student t interval"
    assert est.extra["normality"] == "simulated normal values"
    assert p_value(g, outs, threshold=0.8) < 0.05
    assert n_needed(g, est, threshold=0.95, alpha=0.05) is not None
    flat = [Outcome(f"i{i}", 1.0) for i in range(5)]
    assert p_value(g, flat, threshold=0.8) == 0.0
    assert p_value(gate("mean", "le", **unbounded), flat, threshold=0.8) == 1.0
    with pytest.raises(StatsError, match=r"≥ 2 values"):
        p_value(g, flat[:1], threshold=0.8)
    steps = [Outcome(f"s{i}", 1.0 - 0.01 * i + float(rng.normal(0, 0.01))) for i in range(50)]
    tr = gate("trend_slope", "le", 0.0)
    te = estimate_metric(tr, steps, alpha=0.1)
    assert te.hi < 0 and te.extra["mann_kendall_p_two_sided"] < 1e-6
    assert p_value(tr, steps, threshold=0.0) < 0.05
    ols = estimate_metric(gate("trend_slope", "le", 0.0, method="ols"), steps, alpha=0.1)
    assert ols.method.startswith("OLS")


def test_estimate_sequential_is_anytime_valid_and_checked() -> None:
    from harness.metrics import estimate_sequential

    rng = np.random.default_rng(5)
    outs = binary(list((rng.random(400) < 0.8).astype(int)))
    g = gate("proportion", primary=0.6)
    est = estimate_sequential(g, outs, alpha=0.1)
    assert est.lo > 0.6 and "betting" in est.method and est.n == 400
    fixed = estimate_metric(g, outs, alpha=0.1)
    assert est.hi - est.lo > fixed.hi - fixed.lo  # the price of peeking
    one = [Outcome(f"t{t}", float(t % 2), cluster=f"t{t}") for t in range(40)]
    assert estimate_sequential(gate("pass_at_k"), one, alpha=0.1).n == 40
    with pytest.raises(StatsError, match=r"one sample per task"):
        estimate_sequential(gate("pass_at_k"), [*one, Outcome("x", 1.0, cluster="t0")], alpha=0.1)
    with pytest.raises(StatsError, match=r"sequential mode supports"):
        estimate_sequential(gate("quantile", params={"q": 0.5}), outs, alpha=0.1)
    with pytest.raises(StatsError, match=r"items i0 are outside"):
        estimate_sequential(gate("mean"), [Outcome("i0", 2.0)], alpha=0.1)


def test_bad_outcome_values_name_the_gate_the_items_and_the_fix() -> None:
    g = gate("proportion")
    outs = [Outcome("a", 1.0), Outcome("b", "yes"), Outcome("c", None)]  # type: ignore[arg-type]
    with pytest.raises(StatsError) as info:
        estimate_metric(g, outs, alpha=0.1)
    text = str(info.value)
    assert "gate 'g_proportion'" in text and "2 of 3 items: 'b' ('yes'), 'c' (None)" in text
    assert "map each result to a number" in text
    q = gate("quantile", "le", 5.0, params={"q": 0.5})
    lat = [Outcome(f"r{i}", 1.0, latency_s=0.1) for i in range(20)]
    lat[3] = Outcome("r3", 1.0, latency_s=math.nan)
    with pytest.raises(StatsError, match=r"latency_s is not a finite number for 1 of 20 items"):
        estimate_metric(q, lat, alpha=0.1)


@pytest.mark.parametrize(
    "g", [gate("proportion"), gate("mean"), gate("quantile", "le", params={"q": 0.9})]
)
def test_a_repeated_item_id_is_refused_not_counted_again(g: GateSpec) -> None:
    # one item repeated 100 times must not decide like 100 independent items
    same = [Outcome(item_id="same", value=1.0) for _ in range(100)]
    with pytest.raises(StatsError, match=r"1 item_id\(s\) occur more than once \('same' ×100\)"):
        estimate_metric(g, same, alpha=0.1)


def test_outcomes_that_are_not_a_list_name_the_fix() -> None:
    g = gate("proportion")
    one = Outcome(item_id="a", value=1.0)
    with pytest.raises(StatsError, match="got generator; pass a list"):
        estimate_metric(g, (o for o in [one]), alpha=0.1)  # type: ignore[arg-type]
    with pytest.raises(StatsError, match="got Outcome; pass a list"):
        estimate_metric(g, one, alpha=0.1)  # type: ignore[arg-type]
