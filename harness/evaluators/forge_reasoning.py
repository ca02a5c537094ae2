"""forge_reasoning phase: turn a Quiet-STaR run record and a latency timing into Outcomes.

Training and scoring happen once in :mod:`trainers.quiet_star.pipeline` (cached) and the
timing in :mod:`trainers.quiet_star.latency` (per session).  This module only maps their
records to what each gate of ``gates/forge_reasoning.yaml`` decides on:

* ``special_tokens_added`` — one outcome per declared thought token (1 = newly added);
* ``token_roundtrip_failures`` — one outcome per failed check (0 outcomes → one 0);
* ``baking_convergence`` — per held-out problem, well-formed greedy thought + exact answer;
* ``reasoning_uplift`` — exact match with the own thought vs the ``w = 0`` base, by item;
* ``theater_vs_<condition>`` — per item, ``p̄(own) − p̄(condition)`` in [−1, 1];
* ``theater_mixing_weight`` — per item, the mean mixing weight with the own thought;
* ``thought_latency_p95`` — wall seconds per answer;
* ``thought_leaks`` — per timed held-out answer, 1 if its visible text holds a thought token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.outcomes import Outcome

__all__ = [
    "THEATER_CONDITIONS",
    "baking_outcomes",
    "latency_outcomes",
    "leak_outcomes",
    "mixing_outcomes",
    "report_markdown",
    "roundtrip_outcomes",
    "theater_outcomes",
    "token_outcomes",
    "uplift_outcomes",
]

THEATER_CONDITIONS = ("random", "shuffled", "filler", "none")


def token_outcomes(record: Mapping[str, Any]) -> list[Outcome]:
    """One outcome per declared thought token: 1 if added with a new id of its own."""
    tokens = record["tokens"]
    before = int(tokens["vocab_before"])
    ids = dict(tokens["ids"])
    distinct = len(set(ids.values())) == len(ids)
    return [
        Outcome(item_id=tok, value=float(i >= before and distinct), raw={"id": i})
        for tok, i in ids.items()
    ]


def roundtrip_outcomes(failures: list[str]) -> list[Outcome]:
    """One outcome per failed round-trip check (value 1 each); none failed → one 0."""
    if not failures:
        return [Outcome(item_id="roundtrip", value=0.0, raw={"failures": []})]
    return [
        Outcome(item_id=f"check{i}", value=1.0, raw={"failure": f}) for i, f in enumerate(failures)
    ]


def baking_outcomes(record: Mapping[str, Any], arm: str) -> list[Outcome]:
    """Per held-out problem: 1 if the baked model's thought is well-formed and the answer exact."""
    rows = record["arms"][arm]["baking"]
    return [
        Outcome(
            item_id=str(r["id"]),
            value=float(bool(r["well_formed"]) and bool(r["answer_exact"])),
            raw=dict(r),
        )
        for r in rows
    ]


def _scores(
    record: Mapping[str, Any], arm: str
) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    ev = record["arms"][arm]["evaluation"]
    return list(ev["ids"]), ev["scores"]


def uplift_outcomes(
    record: Mapping[str, Any], arm: str, *, candidate: str = "own"
) -> tuple[list[Outcome], list[Outcome]]:
    """(exact match under ``candidate``, exact match of the ``w = 0`` base), paired by item."""
    ids, sc = _scores(record, arm)

    def rows(cond: str) -> list[Outcome]:
        return [
            Outcome(item_id=i, value=float(r["exact"]), raw={"p_bar": r["p_bar"], "w": r["w"]})
            for i, r in zip(ids, sc[cond], strict=True)
        ]

    return rows(candidate), rows("base")


def theater_outcomes(record: Mapping[str, Any], arm: str, condition: str) -> list[Outcome]:
    """Per item ``p̄(own) − p̄(condition)`` (positive: the own thought explains the answer better)."""
    ids, sc = _scores(record, arm)
    return [
        Outcome(
            item_id=i,
            value=float(a["p_bar"]) - float(b["p_bar"]),
            raw={"own_p_bar": a["p_bar"], f"{condition}_p_bar": b["p_bar"]},
        )
        for i, a, b in zip(ids, sc["own"], sc[condition], strict=True)
    ]


def mixing_outcomes(
    record: Mapping[str, Any], arm: str, *, condition: str = "own"
) -> list[Outcome]:
    """Per item, the mean mixing weight on its answer positions under ``condition``."""
    ids, sc = _scores(record, arm)
    return [
        Outcome(item_id=i, value=float(r["w"])) for i, r in zip(ids, sc[condition], strict=True)
    ]


def latency_outcomes(timing: Mapping[str, Any]) -> list[Outcome]:
    """Wall seconds per answer with thoughts (visible text in ``raw``).

    The timing's machine-load reading rides on every outcome (``raw["machine_load"]``) so
    the decision layer can refuse a FAIL measured on an overloaded machine
    (:func:`harness.decision.guard_machine_load`); a timing without one is decided as is.
    """
    load = timing.get("machine_load")
    return [
        Outcome(
            item_id=str(r["id"]),
            value=float(r["seconds"]),
            latency_s=float(r["seconds"]),
            raw={**dict(r), **({} if load is None else {"machine_load": load})},
        )
        for r in timing["rows"]
    ]


def leak_outcomes(timing: Mapping[str, Any]) -> list[Outcome]:
    """Per timed held-out answer: 1 if a thought token reached the user-visible text.

    A leak is a product defect of its own, decided as an exact count, so it FAILs its gate
    instead of aborting the latency test (which would leave that gate MISSING).
    """
    return [
        Outcome(
            item_id=str(r["id"]),
            value=float(bool(r["visible_has_thought_token"])),
            raw={"answer": r.get("answer")},
        )
        for r in timing["rows"]
    ]


def _table(record: Mapping[str, Any]) -> list[str]:
    lines = [
        "| arm | condition | accuracy | mean p̄ | mean w |",
        "|---|---|---|---|---|",
    ]
    for arm, rec in record["arms"].items():
        for cond, rows in rec["evaluation"]["scores"].items():
            n = len(rows)
            acc = sum(bool(r["exact"]) for r in rows) / n
            pbar = sum(float(r["p_bar"]) for r in rows) / n
            w = sum(float(r["w"]) for r in rows) / n
            lines.append(f"| {arm} | {cond} | {acc:.3f} | {pbar:.3f} | {w:.3f} |")
    return lines


def _step2_line(record: Mapping[str, Any]) -> str:
    """Step 2 of the main arm in one line: updates, slots, selection curve first → last."""
    arm = record["arms"]["main"]
    rl, curve = arm.get("rl", []), arm.get("rl_curve", [])
    if not rl or not curve:
        return "Step 2: no updates recorded."
    slots = sum(float(r.get("slots", 0)) for r in rl) / len(rl)
    first, last = curve[0], curve[-1]
    return (
        f"Step 2: {len(rl)} updates, {slots:.1f} thought slots per update; selection "
        f"accuracy with thought {first['selection_accuracy_thought']:.3f} → "
        f"{last['selection_accuracy_thought']:.3f}, without "
        f"{first['selection_accuracy_base']:.3f} → {last['selection_accuracy_base']:.3f}, "
        f"mixing weight {first['selection_mixing_weight']:.2f} → "
        f"{last['selection_mixing_weight']:.2f}."
    )


def report_markdown(record: Mapping[str, Any], figures: list[str]) -> str:
    """Input model, per-condition table for both arms, example thoughts, stage costs, plots."""
    src = record["input"]["source"]
    secs = record["seconds"]
    parts = [
        f"Input model: **{src}**"
        + (
            f" ({record['input'].get('path')})"
            if src == "champion"
            else " (tiny Llama pretrained here; no forge champion found)"
        ),
        "",
        *_table(record),
        "",
        f"Cold run: {secs['total_wall']:.0f} s wall, {secs['total_cpu']:.0f} s CPU.",
        "",
        _step2_line(record),
        "",
        "Example own thoughts (main arm): "
        + "; ".join(f"`{t}`" for t in record["arms"]["main"]["evaluation"]["thoughts"]["own"][:3]),
    ]
    parts += [f"![{f}]({f})" for f in figures]
    return "\n".join(parts)
