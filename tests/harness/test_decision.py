from typing import Any

import pytest

from harness.decision import Decision, Verdict, decide, per_side_alpha
from harness.errors import StatsError
from harness.spec import DecisionRule, GateSpec
from harness.stats.estimate import Estimate, Sided


def spec(direction: str = "ge", **kw: Any) -> GateSpec:
    tiers = kw.pop("tiers", {"primary": 0.6})
    return GateSpec(
        id="g",
        metric="proportion",
        direction=direction,  # type: ignore[arg-type]
        tiers=tiers,
        **kw,
    )


def est(value: float, lo: float, hi: float, n: int = 100, alpha: float = 0.1) -> Estimate:
    return Estimate(value=value, lo=lo, hi=hi, n=n, method="Clopper–Pearson exact", alpha=alpha)


@pytest.mark.parametrize(
    "direction,bounds,verdict",
    [
        ("ge", (0.7, 0.65, 0.75), Verdict.PASS),
        ("ge", (0.6, 0.6, 0.7), Verdict.PASS),  # bound exactly on the threshold passes
        ("ge", (0.5, 0.45, 0.55), Verdict.FAIL),
        ("ge", (0.6, 0.55, 0.65), Verdict.INCONCLUSIVE),
        ("le", (0.5, 0.45, 0.55), Verdict.PASS),
        ("le", (0.5, 0.45, 0.6), Verdict.PASS),
        ("le", (0.7, 0.65, 0.75), Verdict.FAIL),
        ("le", (0.6, 0.55, 0.65), Verdict.INCONCLUSIVE),
    ],
)
def test_bound_rule(direction: str, bounds: tuple[float, float, float], verdict: Verdict) -> None:
    d = decide(spec(direction), est(*bounds), alpha=0.05, n_needed=lambda t: 1234)
    assert d.verdict is verdict
    assert d.reason.startswith(str(verdict))
    assert not d.legacy and d.rule is DecisionRule.BOUND
    if verdict is Verdict.INCONCLUSIVE:
        assert d.n_needed == 1234 and "n ≥ 1,234" in d.reason
    else:
        assert d.n_needed is None


def test_inconclusive_without_planner() -> None:
    d = decide(spec(), est(0.6, 0.55, 0.65), alpha=0.05)
    assert d.verdict is Verdict.INCONCLUSIVE and d.n_needed is None


def test_tiers_pass_needs_fallback_and_reports_highest() -> None:
    s = spec(tiers={"primary": 0.6, "fallback": 0.5, "stretch": 0.8})
    d = decide(s, est(0.58, 0.55, 0.62), alpha=0.05)
    assert d.verdict is Verdict.PASS and d.tier == "fallback" and d.threshold == 0.5
    d = decide(s, est(0.7, 0.65, 0.75), alpha=0.05)
    assert d.tier == "primary"
    assert dict(d.tier_verdicts) == {
        "stretch": Verdict.FAIL,
        "primary": Verdict.PASS,
        "fallback": Verdict.PASS,
    }
    d = decide(s, est(0.9, 0.85, 0.95), alpha=0.05)
    assert d.tier == "stretch"
    d = decide(s, est(0.4, 0.35, 0.45), alpha=0.05)
    assert d.verdict is Verdict.FAIL and d.tier == "none"
    le = spec("le", tiers={"primary": 0.1, "fallback": 0.2, "stretch": 0.05})
    assert decide(le, est(0.08, 0.06, 0.09), alpha=0.05).tier == "primary"


def test_point_rule_is_labelled_legacy() -> None:
    s = spec(rule="point")
    d = decide(s, est(0.61, 0.3, 0.9, alpha=0.5), alpha=0.05)  # loose bounds are ignored
    assert d.verdict is Verdict.PASS and d.legacy and "legacy point rule" in d.reason
    assert decide(spec("le", rule="point"), est(0.61, 0.3, 0.9), alpha=0.05).verdict is (
        Verdict.FAIL
    )


def test_min_n_downgrades_pass() -> None:
    s = spec(min_n=500)
    d = decide(s, est(0.7, 0.65, 0.75, n=100), alpha=0.05)
    assert d.verdict is Verdict.INCONCLUSIVE and d.n_needed == 500 and "min_n=500" in d.reason
    assert decide(s, est(0.5, 0.45, 0.55, n=100), alpha=0.05).verdict is Verdict.FAIL


def test_min_n_downgrade_resets_the_tier() -> None:
    """An undecided gate reports no tier: the codegen ladder must not read PRIMARY off it."""
    s = spec(min_n=500, tiers={"stretch": 0.7, "primary": 0.6, "fallback": 0.45})
    d = decide(s, est(0.8, 0.75, 0.85, n=100), alpha=0.05)
    assert d.verdict is Verdict.INCONCLUSIVE and d.tier == "none"
    assert Verdict.PASS not in dict(d.tier_verdicts).values()
    full = decide(s, est(0.8, 0.75, 0.85, n=600), alpha=0.05)
    assert full.verdict is Verdict.PASS and full.tier == "stretch"


def test_alpha_mismatch_is_refused() -> None:
    with pytest.raises(StatsError, match=r"compute the estimate with alpha=0.1"):
        decide(spec(), est(0.7, 0.65, 0.75, alpha=0.2), alpha=0.05)
    one = Estimate(value=0.7, lo=0.65, hi=1.0, n=10, method="m", alpha=0.05, sided=Sided.LOWER)
    assert per_side_alpha(one) == 0.05
    assert decide(spec(), one, alpha=0.05).verdict is Verdict.PASS
    # a tighter estimate than needed is fine
    assert decide(spec(), est(0.7, 0.65, 0.75, alpha=0.02), alpha=0.05).verdict is Verdict.PASS


def test_decision_roundtrip() -> None:
    d = decide(spec(), est(0.6, 0.55, 0.65), alpha=0.05, n_needed=lambda t: 10)
    assert Decision.from_dict(d.to_dict()) == d


def test_reason_states_the_real_one_sided_level() -> None:
    from harness.decision import confidence_text

    assert confidence_text(0.0125) == "98.75 %"  # α/m = 0.05/4, not rounded up to 99 %
    assert confidence_text(0.05) == "95 %"
    assert confidence_text(0.05 / 3) == "98.3333 %"
