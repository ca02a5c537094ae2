"""Render docs/circuit_breaker.md's result tables from a phase run and its evidence.

    python -m trainers.circuit_breaker.doc_tables \
        --phase-result <cache>/circuit_breaker/cb-phase-<digest>.json \
        --evidence reports/<ts>/evidence.jsonl [--time time.txt]

The docs' numbers are printed from the files a run wrote, so they cannot drift
from the run they cite: per-run rates on the eval split (every seed of every
arm beside the baseline), correct behaviour by template group, the pooled
verdict of every gate with its per-seed estimates, and the stage times the phase
recorded.  This module only reads JSON; it decides nothing (the verdicts are the
evidence's).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.errors import DataValidationError

__all__ = [
    "main",
    "render",
    "replace_block",
    "run_rates_table",
    "stage_cost_table",
    "verdict_table",
    "write_block",
]

GROUPS = ("seen", "heldout_phrasing", "heldout_placement", "heldout_tool")


def _rate(rows: Sequence[dict[str, Any]], flag: str) -> float:
    return sum(bool(r[flag]) for r in rows) / max(1, len(rows))


def _runs(phase: dict[str, Any]) -> list[str]:
    seeds = phase.get("arm_seeds") or []
    return ["baseline", *(f"{arm}-seed{s}" for arm in ("adv_sft", "cb") for s in seeds)]


def run_rates_table(phase: dict[str, Any]) -> str:
    """One row per run: correct, ASR, no call (attacks), benign success, incoherent."""
    lines = [
        "| run | correct | ASR | no call | benign success | incoherent (of n) |",
        "|---|---|---|---|---|---|",
    ]
    for key in _runs(phase):
        rows = phase["results"][key]
        att = [r for r in rows if r["kind"] == "attack"]
        ben = [r for r in rows if r["kind"] == "benign"]
        bad = sum(not r["coherent"] for r in rows)
        lines.append(
            f"| {key} | {_rate(att, 'correct'):.4g} | {_rate(att, 'harmful'):.4g} | "
            f"{_rate(att, 'no_tool_call'):.4g} | {_rate(ben, 'correct'):.4g} | "
            f"{bad} (of {len(rows)}) |"
        )
    return "\n".join(lines)


def group_table(phase: dict[str, Any]) -> str:
    """Correct / ASR per template group for every run (n attacks per group in the header)."""
    base = [r for r in phase["results"]["baseline"] if r["kind"] == "attack"]
    n = {g: sum(r.get("group") == g for r in base) for g in GROUPS}
    lines = [
        "| run (correct / ASR) | " + " | ".join(f"{g} (n={n[g]})" for g in GROUPS) + " |",
        "|---" * (len(GROUPS) + 1) + "|",
    ]
    for key in _runs(phase):
        att = [r for r in phase["results"][key] if r["kind"] == "attack"]
        cells = []
        for g in GROUPS:
            rows = [r for r in att if r.get("group") == g]
            cells.append(f"{_rate(rows, 'correct'):.2f} / {_rate(rows, 'harmful'):.2f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seed_cells(per_seed: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        return f"{v['value']:.4g}" if isinstance(v, dict) else f"{v:g}"

    return " / ".join(one(v) for v in per_seed.values())


def verdict_table(evidence: Sequence[dict[str, Any]]) -> str:
    """Every gate × subject: the decided estimate and bounds, per-seed values, verdict."""
    lines = [
        "| gate | subject | threshold | decided estimate [bounds] | per seed (0 / 1 / 2) "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for ev in evidence:
        est, dec = ev.get("estimate") or {}, ev["decision"]
        value = est.get("value")
        shown = "—" if value is None else f"{value:.4g}"
        if value is not None and est.get("lo") is not None and est["lo"] != est.get("hi"):
            shown += f" [{est['lo']:.4g}, {est['hi']:.4g}]"
        per_seed = (ev.get("extra") or {}).get("per_seed") or {}
        op = "≥" if ev.get("direction") == "ge" else "≤"
        threshold = "—" if dec.get("threshold") is None else f"{op} {dec['threshold']:g}"
        lines.append(
            f"| {ev['gate']} | {ev['subject']} | {threshold} | {shown} | "
            f"{_seed_cells(per_seed) if per_seed else '—'} | **{dec['verdict']}** |"
        )
    return "\n".join(lines)


def stage_cost_table(phase: dict[str, Any]) -> str:
    """Wall seconds per stage as the phase recorded them, and the phase process's CPU seconds."""
    wall = phase.get("wall_s", {})
    lines = ["| stage | wall s |", "|---|---|"]
    lines += [f"| {k} | {v:g} |" for k, v in wall.items() if k != "cpu_total"]
    if "cpu_total" in wall:
        lines.append(f"| **CPU seconds of the phase process** | **{wall['cpu_total']:g}** |")
    return "\n".join(lines)


def _time_summary(text: str) -> str:
    """Wall, user + system CPU and peak RSS from a ``/usr/bin/time -v`` report."""
    fields = {
        "wall": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
        "user": r"User time \(seconds\): (\S+)",
        "sys": r"System time \(seconds\): (\S+)",
        "rss_kb": r"Maximum resident set size \(kbytes\): (\d+)",
    }
    got = {k: (m.group(1) if (m := re.search(p, text)) else "?") for k, p in fields.items()}
    cpu = "?"
    if got["user"] != "?" and got["sys"] != "?":
        cpu = f"{float(got['user']) + float(got['sys']):.0f}"
    return (
        f"`/usr/bin/time -v`: wall {got['wall']}, CPU (user + system) {cpu} s, "
        f"peak RSS {int(got['rss_kb']) // 1024 if got['rss_kb'] != '?' else '?'} MiB"
    )


def render(phase: dict[str, Any], evidence: Sequence[dict[str, Any]], time_text: str = "") -> str:
    """All tables, in the order the docs show them."""
    cb = [e for e in evidence if e.get("phase") == "circuit_breaker"]
    parts = [
        f"Phase result `{phase['config_digest'][:12]}`; seeds {phase.get('arm_seeds')}; "
        f"eval attacks {phase['counts'].get('eval_attacks')}, "
        f"benign {phase['counts'].get('eval_benign')}.",
        "",
        run_rates_table(phase),
        "",
        group_table(phase),
        "",
        verdict_table(cb),
        "",
        stage_cost_table(phase),
    ]
    if time_text:
        parts += ["", _time_summary(time_text)]
    return "\n".join(parts)


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced.

    The markers stay, so the block can be regenerated; a missing marker is an
    error naming it (a doc whose markers were edited away must not be silently
    appended to).
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise DataValidationError(
            f"doc tables: markers {begin} … {end} not found in order; add them"
        )
    return text[: i + len(begin)] + "\n" + content.rstrip("\n") + "\n" + text[j:]


def write_block(path: Path, name: str, content: str) -> None:
    """Replace block ``name`` of the markdown file ``path`` (see :func:`replace_block`)."""
    text = replace_block(path.read_text(encoding="utf-8"), name, content)
    atomic_write_text(path, text, perms=path.stat().st_mode & 0o777)  # keep the doc's mode


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docs)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--phase-result", type=Path, required=True)
    parser.add_argument("--evidence", type=Path, required=True, help="evidence.jsonl of the run")
    parser.add_argument("--time", type=Path, help="a saved `/usr/bin/time -v` report")
    parser.add_argument(
        "--write-docs", type=Path, help="replace the 'cb-results' block of this markdown file"
    )
    args = parser.parse_args(argv)
    phase = json.loads(args.phase_result.read_text(encoding="utf-8"))
    lines = args.evidence.read_text(encoding="utf-8").splitlines()
    evidence = [json.loads(line) for line in lines if line.strip()]
    time_text = args.time.read_text(encoding="utf-8") if args.time else ""
    text = render(phase, evidence, time_text)
    if args.write_docs is not None:
        write_block(args.write_docs, "cb-results", text)
    else:
        print(text)


if __name__ == "__main__":
    main()
