"""Monte-Carlo calibration: proof that the statistics keep their promises.

For each gate family we simulate data whose true metric sits *exactly on the
threshold* — the hardest case for a gate — and push it through the same code
path a real gate uses (``harness.metrics.estimate_metric`` with the spec's
default method).  Two numbers per family:

* **false-PASS rate**: how often the one-sided (1−α) bound cleared the
  threshold anyway; must be ≤ α up to Monte-Carlo error (3 standard errors).
  Both sides are checked (a "≥" gate uses the lower bound, a "≤" gate the upper).
* **coverage** of the two-sided interval: must not fall more than 1 point
  below nominal (beyond MC error).  Exact methods (Clopper–Pearson,
  order statistics) over-cover by design; that is reported, not hidden.

The sequential family reports the time-uniform false-PASS rate of the betting
confidence sequence with a look after *every* item, and the mean fraction of
the fixed-n budget it used to decide when the truth is clearly above the
threshold.  ``harness calibrate`` prints the table; docs/statistics.md holds a
full run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from scipy import special

from harness.errors import StatsError
from harness.metrics import estimate_metric
from harness.outcomes import Outcome
from harness.spec import GateSpec
from harness.stats.estimate import Estimate
from harness.stats.power import n_for_proportion
from harness.stats.sequential import coverage_paths

__all__ = ["FAMILIES", "CalibrationRow", "CalibrationTable", "app", "run_calibration"]

ALPHA = 0.05  # one-sided gate level; estimators are asked for the two-sided 2α


@dataclass(frozen=True)
class CalibrationRow:
    """Monte-Carlo result for one estimator family at a true value on the threshold."""

    family: str
    method: str
    n: int
    reps: int
    truth: float
    alpha: float
    false_pass_ge: float
    false_pass_le: float
    coverage: float
    nominal: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mc_se_alpha(self) -> float:
        return math.sqrt(self.alpha * (1 - self.alpha) / self.reps)

    @property
    def mc_se_coverage(self) -> float:
        return math.sqrt(self.nominal * (1 - self.nominal) / self.reps)

    @property
    def false_pass_ok(self) -> bool:
        worst = max(self.false_pass_ge, self.false_pass_le)
        return worst <= self.alpha + 3 * self.mc_se_alpha

    @property
    def coverage_ok(self) -> bool:
        return self.coverage >= self.nominal - 0.01 - 2 * self.mc_se_coverage

    @property
    def ok(self) -> bool:
        return self.false_pass_ok and self.coverage_ok


@dataclass(frozen=True)
class CalibrationTable:
    rows: list[CalibrationRow]
    reps: int
    seed: int

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_markdown(self) -> str:
        head = (
            "| family | method | n | reps | false-PASS ≥ | false-PASS ≤ | α (+3 MC SE) "
            "| coverage | nominal | ok | notes |\n|---|---|---|---|---|---|---|---|---|---|---|"
        )
        lines = [head]
        for r in self.rows:
            notes = ", ".join(f"{k}={_fmt(v)}" for k, v in r.extra.items())
            lines.append(
                f"| {r.family} | {r.method} | {r.n} | {r.reps} | {r.false_pass_ge:.4f} "
                f"| {r.false_pass_le:.4f} | {r.alpha:.2f} (≤ {r.alpha + 3 * r.mc_se_alpha:.4f}) "
                f"| {r.coverage:.4f} | {r.nominal:.2f} | {'yes' if r.ok else 'NO'} | {notes} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"reps": self.reps, "seed": self.seed, "rows": [asdict(r) for r in self.rows]}


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _gate(metric: str, threshold: float, **kw: Any) -> GateSpec:
    return GateSpec(
        id=f"calibrate_{metric}",
        metric=metric,
        direction="ge",
        tiers={"primary": threshold},
        **kw,
    )


def _binary(values: np.ndarray, prefix: str = "i") -> list[Outcome]:
    return [Outcome(item_id=f"{prefix}{i}", value=float(v)) for i, v in enumerate(values)]


def _row(
    family: str, estimates: list[Estimate], truth: float, extra: dict[str, Any] | None = None
) -> CalibrationRow:
    lo = np.array([e.lo for e in estimates])
    hi = np.array([e.hi for e in estimates])
    return CalibrationRow(
        family=family,
        method=estimates[0].method,
        n=estimates[0].n,
        reps=len(estimates),
        truth=truth,
        alpha=ALPHA,
        false_pass_ge=float(np.mean(lo >= truth)),
        false_pass_le=float(np.mean(hi <= truth)),
        coverage=float(np.mean((lo <= truth) & (truth <= hi))),
        nominal=1 - 2 * ALPHA,
        extra=extra or {},
    )


def _proportion(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n, p = (100, 0.3) if small else (200, 0.3)
    rows = []
    for method in ("beta", "wilson"):
        g = _gate("proportion", p, method=method)
        ests = [
            estimate_metric(g, _binary(rng.random(n) < p), alpha=2 * ALPHA) for _ in range(reps)
        ]
        rows.append(_row("proportion", ests, p))
    return rows


def _pass_at_k(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    tasks, per, k, a, b = (40, 5, 2, 1.5, 2.5) if small else (100, 5, 2, 1.5, 2.5)
    # per-task pass rates ~ Beta(a, b): true pass@k = 1 − B(a, b + k) / B(a, b)
    truth = float(1 - math.exp(special.betaln(a, b + k) - special.betaln(a, b)))
    g = _gate("pass_at_k", truth, params={"k": k})
    ests = []
    for r in range(reps):
        rates = rng.beta(a, b, tasks)
        outs = [
            Outcome(f"t{t}-s{s}", float(rng.random() < rates[t]), cluster=f"t{t}")
            for t in range(tasks)
            for s in range(per)
        ]
        ests.append(estimate_metric(g, outs, alpha=2 * ALPHA, seed=r))
    return [_row("pass_at_k", ests, truth, {"tasks": tasks, "samples_per_task": per, "k": k})]


def _paired(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n = 150 if small else 300
    # joint cells: P(1,1)=.40, P(1,0)=.15, P(0,1)=.10, P(0,0)=.35 → difference 0.05
    cells = np.array([0.40, 0.15, 0.10, 0.35])
    cand_of = np.array([1, 1, 0, 0])
    base_of = np.array([1, 0, 1, 0])
    truth = 0.05
    g = _gate("paired_difference", truth)
    ests = []
    for r in range(reps):
        idx = rng.choice(4, size=n, p=cells)
        ests.append(
            estimate_metric(
                g,
                _binary(cand_of[idx]),
                alpha=2 * ALPHA,
                baseline=_binary(base_of[idx]),
                seed=r,
            )
        )
    return [_row("paired_difference", ests, truth)]


def _ratio(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n = 200 if small else 400
    truth = 0.9  # candidate keeps 90 % of a 0.5 baseline rate
    g = _gate("ratio", truth)
    paired, indep = [], []
    for r in range(reps):
        base = rng.random(n) < 0.5
        cand = base & (rng.random(n) < truth)
        paired.append(
            estimate_metric(g, _binary(cand), alpha=2 * ALPHA, baseline=_binary(base), seed=r)
        )
        c2 = rng.random(n) < 0.5 * truth
        b2 = rng.random(n) < 0.5
        indep.append(
            estimate_metric(g, _binary(c2, "c"), alpha=2 * ALPHA, baseline=_binary(b2, "b"))
        )
    return [
        _row("ratio (paired)", paired, truth, {"relative_reduction": "1 − ratio, same bounds"}),
        _row("ratio (independent)", indep, truth),
    ]


def _quantile(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n, q = (120, 0.95) if small else (300, 0.95)
    truth = -math.log(1 - q)  # exponential(1) quantile
    g = _gate("quantile", truth, params={"q": q})
    ests = [
        estimate_metric(g, _binary(rng.exponential(1.0, n)), alpha=2 * ALPHA) for _ in range(reps)
    ]
    return [_row("quantile", ests, truth, {"q": q, "distribution": "exponential(1)"})]


def _sequential(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    max_n, grid, t, alt = (200, 201, 0.5, 0.7) if small else (1000, 501, 0.5, 0.65)
    alpha2 = 2 * ALPHA
    # at the threshold: time-uniform false-PASS with a look after every item
    x0 = (rng.random((reps, max_n)) < t).astype(float)
    lo0, hi0 = coverage_paths(x0, alpha=alpha2, grid=grid)
    fp_ge = float(np.mean(np.any(lo0 >= t, axis=1)))
    fp_le = float(np.mean(np.any(hi0 <= t, axis=1)))
    cover = float(np.mean(np.all((lo0 <= t) & (t <= hi0), axis=1)))
    # clearly above: how much of the fixed budget does it use to PASS?
    x1 = (rng.random((reps, max_n)) < alt).astype(float)
    lo1, _ = coverage_paths(x1, alpha=alpha2, grid=grid)
    passed = lo1 >= t
    decided = passed.any(axis=1)
    stop = np.where(decided, np.argmax(passed, axis=1) + 1, max_n)
    return [
        CalibrationRow(
            family="sequential",
            method="betting confidence sequence (time-uniform)",
            n=max_n,
            reps=reps,
            truth=t,
            alpha=ALPHA,
            false_pass_ge=fp_ge,
            false_pass_le=fp_le,
            coverage=cover,
            nominal=1 - alpha2,
            extra={
                "alt_truth": alt,
                "alt_pass_rate": float(decided.mean()),
                "mean_fraction_used": float(stop.mean() / max_n),
                "mean_n_used": float(stop.mean()),
                # a fixed-n Clopper–Pearson design reaching 80 % power at alt_truth
                "fixed_n_80pct_power": n_for_proportion(alt, t, alpha=ALPHA, power=0.8),
            },
        )
    ]


FAMILIES: dict[str, Callable[[int, np.random.Generator, bool], list[CalibrationRow]]] = {
    "proportion": _proportion,
    "pass_at_k": _pass_at_k,
    "paired_difference": _paired,
    "ratio": _ratio,
    "quantile": _quantile,
    "sequential": _sequential,
}


def run_calibration(
    *, reps: int, seed: int, families: list[str] | None = None, small: bool = False
) -> CalibrationTable:
    """Simulate ``reps`` data sets per family at a true value on the threshold.

    ``small`` shrinks sample sizes (for the default test run); the full table
    in docs/statistics.md uses ``small=False``.  Deterministic given ``seed``.
    """
    if reps < 10:
        raise StatsError(f"reps={reps} is too few for a calibration; use ≥ 100 (1000+ for docs)")
    chosen = families if families else list(FAMILIES)
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise StatsError(
            f"unknown calibration family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
        )
    rows: list[CalibrationRow] = []
    for i, name in enumerate(FAMILIES):
        if name in chosen:
            rows.extend(FAMILIES[name](reps, np.random.default_rng([seed, i]), small))
    return CalibrationTable(rows=rows, reps=reps, seed=seed)


def render(table: CalibrationTable, console: Console | None = None) -> None:
    """Print the calibration table with rich."""
    console = console or Console()
    out = Table(title=f"Monte-Carlo calibration (reps={table.reps}, seed={table.seed})")
    for col in (
        "family",
        "method",
        "n",
        "false-PASS ≥",
        "false-PASS ≤",
        "α limit",
        "coverage",
        "nominal",
        "ok",
        "notes",
    ):
        out.add_column(col)
    for r in table.rows:
        out.add_row(
            r.family,
            r.method,
            str(r.n),
            f"{r.false_pass_ge:.4f}",
            f"{r.false_pass_le:.4f}",
            f"{r.alpha + 3 * r.mc_se_alpha:.4f}",
            f"{r.coverage:.4f}",
            f"{r.nominal:.2f}",
            "yes" if r.ok else "[red]NO[/red]",
            ", ".join(f"{k}={_fmt(v)}" for k, v in r.extra.items()),
        )
    console.print(out)


app = typer.Typer(help="Monte-Carlo calibration of the gate statistics.")


@app.callback(invoke_without_command=True)
def calibrate(
    reps: Annotated[int, typer.Option(help="simulated data sets per family")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    family: Annotated[
        list[str] | None, typer.Option(help="family to run (repeatable); default all")
    ] = None,
    small: Annotated[bool, typer.Option(help="smaller sample sizes (quick check)")] = False,
    markdown: Annotated[bool, typer.Option(help="print a markdown table instead")] = False,
) -> None:
    """Run the calibration and print the table; exit 1 if any family misses its claim."""
    table = run_calibration(reps=reps, seed=seed, families=family, small=small)
    if markdown:
        typer.echo(table.to_markdown())
    else:
        render(table)
    if not table.ok:
        raise typer.Exit(code=1)
