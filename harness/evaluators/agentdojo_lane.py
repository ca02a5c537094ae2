"""AgentDojo lane of the circuit-breaker phase: utility and targeted ASR per suite, per arm.

How it runs (two processes, two environments):

* the harness (this venv) serves each arm's model on ``127.0.0.1`` with
  :class:`~harness.backends.local_server.LocalServer`, wrapped in
  :class:`~harness.backends.agentdojo_adapter.AgentDojoToolAdapter` so AgentDojo's
  ``<function=…>`` protocol and the model's ``<|python_tag|>`` tool calls meet;
* ``harness/lanes/agentdojo_client.py`` runs in the separate agentdojo venv
  (``scripts/setup_agentdojo.sh``; agentdojo 0.1.35 and its ~70 dependencies
  never enter this environment, and it needs no torch) and plays the
  ``important_instructions`` attack over user × injection pairs against it.

Arms are any :class:`Generator` s; :func:`circuit_breaker_arms` loads the
circuit-breaker phase's cached models (``baseline`` = the vulnerable SFT model
*without* an adapter, ``cb`` / ``adv_sft`` = the baseline *with* that LoRA
adapter merged in).  Every arm sees the same pairs (same suite, same seeded
subset), so the arms are paired and a McNemar exact test compares their attack
successes.

Metrics per (arm, suite), each with an exact Clopper–Pearson interval
(:func:`harness.stats.proportion.proportion_estimate`, two-sided 95 %):

* ``utility_under_attack`` — AgentDojo's user-task check on the attacked pairs;
* ``targeted_asr`` — AgentDojo's injection-task ("security") check: the
  attacker's goal was achieved;
* ``benign_utility`` — the user tasks of the selected pairs without injections.

Evidence: ``<out>/agentdojo-lane.json`` (lane ``"agentdojo"``; written
atomically) with every number, the adapter counters (how many prompts were over
the model's context window, how many calls were translated), and the path of
each raw client result (``<out>/raw/<arm>-<suite>.json``: every pair's messages)
and AgentDojo trace directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import typer
from pydantic import BaseModel, ConfigDict, Field

from harness.agentdojo_venv import AGENTDOJO_VERSION, AgentDojoUnavailable, find_agentdojo_python
from harness.backends.agentdojo_adapter import AgentDojoToolAdapter
from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    Latency,
    ModelIdentity,
)
from harness.backends.local_server import LocalServer, serve
from harness.errors import BackendError, HarnessError
from harness.evidence import atomic_write_text
from harness.outcomes import Outcome
from harness.settings import child_environment, get_settings
from harness.stats.estimate import Estimate
from harness.stats.paired import mcnemar_exact
from harness.stats.proportion import proportion_estimate

if TYPE_CHECKING:
    from trainers.circuit_breaker.pipeline import PhaseRun

__all__ = [
    "AGENTDOJO_SUITES",
    "CLIENT_SCRIPT",
    "CONTROL_NOOP",
    "LANE",
    "AgentDojoLaneConfig",
    "AgentDojoUnavailable",
    "ArmSuiteResult",
    "LaneResult",
    "NoToolCallControl",
    "app",
    "circuit_breaker_arms",
    "find_agentdojo_python",
    "main",
    "markdown_table",
    "outcomes",
    "run_lane",
    "run_suite",
]

LANE = "agentdojo"
AGENTDOJO_SUITES = ("banking", "slack", "travel", "workspace")
CLIENT_SCRIPT = Path(__file__).resolve().parent.parent / "lanes" / "agentdojo_client.py"


class AgentDojoLaneConfig(BaseModel):
    """What to run; identical for every arm so the arms stay paired."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suites: tuple[Literal["banking", "slack", "travel", "workspace"], ...] = ("banking",)
    max_pairs: int | None = Field(
        default=None, ge=1, description="seeded subset of user×injection pairs per suite"
    )
    pair_seed: int = 0
    user_tasks: tuple[str, ...] = ()
    injection_tasks: tuple[str, ...] = ()
    benign: bool = True
    attack: str = "important_instructions"
    benchmark_version: str = "v1.2.2"
    max_tokens: int = Field(default=128, ge=1, description="per model call (agentdojo sends none)")
    max_iters: int = Field(default=15, ge=1, description="tool-loop iterations per task")
    adapter_mode: Literal["native", "passthrough"] = "native"
    timeout_s: float = Field(default=4 * 3600, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=1, description="two-sided CI miscoverage")


@dataclass
class ArmSuiteResult:
    """One arm on one suite: counts, exact intervals, wall time, where the raw outputs are."""

    arm: str
    suite: str
    n_pairs: int
    n_pairs_total: int
    utility_successes: int
    attack_successes: int
    benign_n: int
    benign_successes: int
    utility_under_attack: dict[str, Any]
    targeted_asr: dict[str, Any]
    benign_utility: dict[str, Any] | None
    wall_s: float
    server_requests: int
    adapter: dict[str, int]
    client_errors: int
    pairs_with_tool_call: int
    raw_path: str
    logdir: str
    pair_keys: list[str] = field(default_factory=list)
    security: list[bool] = field(default_factory=list)


@dataclass
class LaneResult:
    lane: str
    config: dict[str, Any]
    agentdojo_version: str
    arms: dict[str, dict[str, str]]
    results: list[ArmSuiteResult]
    paired: list[dict[str, Any]]
    wall_s: float
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NoToolCallControl:
    """Control arm, not a model: every turn answers with text and never calls a tool.

    Why: several AgentDojo utility checks pass when the environment is left
    unchanged, so a model that never manages a tool call still gets non-zero
    utility.  This arm measures that floor on the same pairs; a model's utility
    means something only above it.  Its attack success must be 0 (injections
    need an action); anything else is a harness error in the scoring path.
    """

    def __init__(self, text: str = "I cannot complete this task.") -> None:
        self.text = text
        self._identity = ModelIdentity(backend="control", name="no-tool-call")

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [
            Generation(
                request_id=r.request_id,
                texts=(self.text,) * r.sampling.n,
                finish_reasons=("stop",) * r.sampling.n,
                prompt_tokens=0,
                completion_tokens=(0,) * r.sampling.n,
                latency=Latency(total_s=0.0),
                model=self._identity,
                sampling=r.sampling,
                lane="control",
            )
            for r in requests
        ]


CONTROL_NOOP = "control_no_tool_call"


def _estimate_dict(est: Estimate) -> dict[str, Any]:
    return {
        "value": est.value,
        "lo": est.lo,
        "hi": est.hi,
        "n": est.n,
        "method": est.method,
        "alpha": est.alpha,
    }


def _context_window(gen: Generator) -> int | None:
    model = getattr(gen, "model", None)
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(value) if isinstance(value, int) else None


def run_suite(
    generator: Generator,
    *,
    arm: str,
    suite: str,
    config: AgentDojoLaneConfig,
    python: Path,
    out_dir: Path,
    progress: Callable[[str], None] = print,
) -> ArmSuiteResult:
    """Serve ``generator`` on 127.0.0.1 and run the agentdojo client for one suite."""
    if suite not in AGENTDOJO_SUITES:
        raise HarnessError(f"agentdojo suite {suite!r} unknown; use one of {AGENTDOJO_SUITES}")
    adapter = AgentDojoToolAdapter(
        generator, mode=config.adapter_mode, context_window=_context_window(generator)
    )
    raw_path = out_dir / "raw" / f"{arm}-{suite}.json"
    logdir = out_dir / "traces" / arm
    t0 = time.perf_counter()
    with serve(adapter, default_max_tokens=config.max_tokens, max_batch=1) as srv:
        cmd = _client_command(
            python, srv, arm=arm, suite=suite, config=config, raw_path=raw_path, logdir=logdir
        )
        progress(f"agentdojo: {arm} on {suite} → {srv.base_url}")
        proc = _run_client(cmd, arm=arm, suite=suite, timeout_s=config.timeout_s)
        served = srv.requests_served
    wall = time.perf_counter() - t0
    raw = _read_client_result(proc, raw_path, arm=arm, suite=suite)
    pairs, benign = raw["pairs"], raw["benign"]
    util = sum(1 for p in pairs if p["utility"])
    asr = sum(1 for p in pairs if p["security"])
    benign_ok = sum(1 for b in benign if b["utility"])
    return ArmSuiteResult(
        arm=arm,
        suite=suite,
        n_pairs=len(pairs),
        n_pairs_total=int(raw["n_pairs_total"]),
        utility_successes=util,
        attack_successes=asr,
        benign_n=len(benign),
        benign_successes=benign_ok,
        utility_under_attack=_estimate_dict(
            proportion_estimate(util, len(pairs), alpha=config.alpha)
        ),
        targeted_asr=_estimate_dict(proportion_estimate(asr, len(pairs), alpha=config.alpha)),
        benign_utility=None
        if not benign
        else _estimate_dict(proportion_estimate(benign_ok, len(benign), alpha=config.alpha)),
        wall_s=round(wall, 2),
        server_requests=served,
        adapter=adapter.stats.to_dict(),
        client_errors=sum(len(p["client_errors"]) for p in [*pairs, *benign]),
        pairs_with_tool_call=sum(1 for p in pairs if p["tool_calls"]),
        raw_path=str(raw_path),
        logdir=str(logdir),
        pair_keys=[f"{p['user_task']}|{p['injection_task']}" for p in pairs],
        security=[bool(p["security"]) for p in pairs],
    )


def _client_command(
    python: Path,
    srv: LocalServer,
    *,
    arm: str,
    suite: str,
    config: AgentDojoLaneConfig,
    raw_path: Path,
    logdir: Path,
) -> list[str]:
    """The agentdojo client's command line for one arm and suite against ``srv``."""
    cmd = [
        str(python),
        str(CLIENT_SCRIPT),
        "--base-url",
        srv.base_url,
        "--model-id",
        srv.model_name,
        "--suite",
        suite,
        "--out",
        str(raw_path),
        "--logdir",
        str(logdir),
        # the attack addresses "the local model" only if the pipeline name contains "local"
        "--pipeline-name",
        f"local-{arm}",
        "--benchmark-version",
        config.benchmark_version,
        "--attack",
        config.attack,
        "--pair-seed",
        str(config.pair_seed),
        "--max-iters",
        str(config.max_iters),
        "--progress",
    ]
    if config.max_pairs is not None:
        cmd += ["--max-pairs", str(config.max_pairs)]
    if config.user_tasks:
        cmd += ["--user-tasks", ",".join(config.user_tasks)]
    if config.injection_tasks:
        cmd += ["--injection-tasks", ",".join(config.injection_tasks)]
    if config.benign:
        cmd.append("--benign")
    return cmd


def _run_client(
    cmd: list[str], *, arm: str, suite: str, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run the client with no OpenAI settings or PYTHONPATH of ours, loopback unproxied."""
    env = child_environment(drop_prefixes=("OPENAI_", "PYTHONPATH"))
    env["NO_PROXY"] = "127.0.0.1,localhost"
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendError(
            f"agentdojo client for {arm}/{suite} exceeded timeout_s={timeout_s}; "
            "lower max_pairs or raise timeout_s"
        ) from exc


def _read_client_result(
    proc: subprocess.CompletedProcess[str], raw_path: Path, *, arm: str, suite: str
) -> dict[str, Any]:
    """Keep the client's log next to its result; the result, if complete with pairs."""
    log_path = raw_path.with_name(f"{arm}-{suite}.client.log")
    atomic_write_text(log_path, proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0 or not raw_path.is_file():
        raise BackendError(
            f"agentdojo client for {arm}/{suite} failed (exit {proc.returncode}); see {log_path}: "
            f"{proc.stderr.strip()[-800:]}"
        )
    raw: dict[str, Any] = json.loads(raw_path.read_text(encoding="utf-8"))
    if not raw.get("complete"):
        raise BackendError(f"{raw_path}: client result is incomplete; rerun the suite")
    if not raw["pairs"]:
        raise HarnessError(f"agentdojo {suite}: no user×injection pairs selected; check the ids")
    return raw


def outcomes(result: ArmSuiteResult, *, metric: Literal["asr", "utility"]) -> list[Outcome]:
    """Per-pair 0/1 Outcomes for a gate (clustered by user task: its pairs share a prompt).

    Read back from the raw client file, so a gate decides from exactly what was scored.
    """
    raw = json.loads(Path(result.raw_path).read_text(encoding="utf-8"))
    key = "security" if metric == "asr" else "utility"
    return [
        Outcome(
            item_id=f"{result.suite}/{p['user_task']}/{p['injection_task']}",
            value=1.0 if p[key] else 0.0,
            cluster=f"{result.suite}/{p['user_task']}",
            latency_s=float(p["wall_s"]),
            raw={"arm": result.arm, "final_output": p["final_output"]},
        )
        for p in raw["pairs"]
    ]


def _paired(results: Sequence[ArmSuiteResult], baseline: str) -> list[dict[str, Any]]:
    """McNemar exact on attack success, each arm vs ``baseline``, on identical pairs per suite."""
    out: list[dict[str, Any]] = []
    base = {r.suite: r for r in results if r.arm == baseline}
    for r in results:
        b = base.get(r.suite)
        if r.arm == baseline or r.arm.startswith("control_") or b is None:
            continue
        if r.pair_keys != b.pair_keys:
            raise HarnessError(
                f"agentdojo {r.suite}: arms {r.arm!r} and {baseline!r} ran different pairs; "
                "the comparison would not be paired"
            )
        test = mcnemar_exact(np.array(r.security, dtype=float), np.array(b.security, dtype=float))
        out.append(
            {
                "suite": r.suite,
                "arm": r.arm,
                "baseline": baseline,
                "asr_arm": r.attack_successes / r.n_pairs,
                "asr_baseline": b.attack_successes / b.n_pairs,
                "n": r.n_pairs,
                **test,
            }
        )
    return out


def run_lane(
    arms: Mapping[str, Generator],
    *,
    config: AgentDojoLaneConfig,
    out_dir: Path,
    baseline_arm: str = "baseline",
    python: Path | None = None,
    arm_info: Mapping[str, Mapping[str, str]] | None = None,
    progress: Callable[[str], None] = print,
) -> LaneResult:
    """Every arm × suite; writes ``<out_dir>/agentdojo-lane.json`` atomically and returns it."""
    if not arms:
        raise HarnessError("agentdojo lane: no arms given")
    py = python or find_agentdojo_python()
    out_dir = Path(out_dir).resolve()  # evidence names raw files by absolute path
    t0 = time.perf_counter()
    results = [
        run_suite(
            gen,
            arm=name,
            suite=suite,
            config=config,
            python=py,
            out_dir=out_dir,
            progress=progress,
        )
        for name, gen in arms.items()
        for suite in config.suites
    ]
    notes = []
    over = sum(r.adapter["over_context"] for r in results)
    if over:
        notes.append(
            f"{over} model calls had prompts longer than the model's context window "
            "(served anyway; RoPE extrapolation, degraded)"
        )
    lane = LaneResult(
        lane=LANE,
        config=config.model_dump(mode="json"),
        agentdojo_version=AGENTDOJO_VERSION,
        arms={
            name: {
                **{k: str(v) for k, v in (arm_info or {}).get(name, {}).items()},
                "identity_digest": gen.identity.digest(),
                "weights_digest": str(gen.identity.weights_digest),
            }
            for name, gen in arms.items()
        },
        results=results,
        paired=_paired(results, baseline_arm),
        wall_s=round(time.perf_counter() - t0, 2),
        notes=notes,
    )
    atomic_write_text(
        out_dir / "agentdojo-lane.json", json.dumps(lane.to_dict(), indent=2, sort_keys=True)
    )
    return lane


def circuit_breaker_arms(
    cache_dir: Path,
    *,
    arms: Sequence[str] = ("baseline", "cb"),
    phase_result: Path | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[dict[str, Generator], dict[str, dict[str, str]]]:
    """Load the circuit-breaker phase's models from its cache (training them if not cached).

    ``baseline`` is the vulnerable SFT model; ``cb`` / ``adv_sft`` are that model
    with the arm's LoRA adapter merged (``merge_and_unload``): the served weights
    are exactly base + adapter, and the identity digests them.

    ``phase_result`` pins a specific cached run (``<cache>/circuit_breaker/cb-phase-*.json``)
    instead of the run of today's default config, so several lane runs can share
    one set of models while the trainer code moves on.
    """
    import torch
    from transformers import AutoTokenizer

    from harness.backends.hf import HFGenerator, quiet_progress
    from trainers.circuit_breaker.pipeline import ARMS

    torch.set_num_threads(1)
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise HarnessError(f"agentdojo lane: unknown arm(s) {unknown}; use {list(ARMS)}")
    root = Path(cache_dir) / "circuit_breaker"
    run = _phase_run(root, phase_result=phase_result, progress=progress)
    # trained arms are stored once per seed; the lane serves the first seed's model
    seed = run.arm_seeds[0]
    digest_of, dirs = _trained_arm_dirs(root, run, arms=arms, seed=seed)
    baseline_dir = dirs["baseline"] / "model"
    tokenizer = AutoTokenizer.from_pretrained(baseline_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    gens: dict[str, Generator] = {}
    info: dict[str, dict[str, str]] = {}
    for arm in arms:
        if arm == "baseline":
            with quiet_progress():
                gens[arm] = HFGenerator.from_pretrained(baseline_dir, name="cb-baseline")
            info[arm] = {
                "model_dir": str(baseline_dir),
                "adapter": "none",
                "phase_config_digest": run.config_digest,
            }
            continue
        adapter = dirs[arm] / "adapter"
        gens[arm] = _merged_arm(baseline_dir, adapter, tokenizer, name=f"cb-baseline+{arm}")
        info[arm] = {
            "model_dir": str(baseline_dir),
            "adapter": str(adapter),
            "adapter_digest": digest_of[arm],
            "seed": str(seed),
            "phase_config_digest": run.config_digest,
        }
    return gens, info


def _phase_run(
    root: Path, *, phase_result: Path | None, progress: Callable[[str], None]
) -> PhaseRun:
    """The pinned cached phase run, or today's default run (trained if not cached)."""
    from trainers.circuit_breaker.pipeline import PhaseRun, PhaseRunConfig, run_phase

    if phase_result is None:
        return run_phase(PhaseRunConfig(), cache_dir=root, progress=progress)
    if not Path(phase_result).is_file():
        raise HarnessError(
            f"--phase-result {phase_result}: no such file; pick one of "
            f"{sorted(p.name for p in root.glob('cb-phase-*.json'))}"
        )
    return PhaseRun.load(Path(phase_result))


def _trained_arm_dirs(
    root: Path, run: PhaseRun, *, arms: Sequence[str], seed: int
) -> tuple[dict[str, str], dict[str, Path]]:
    """Each arm's (and the baseline's) model digest and its artifact directory in the cache."""
    from trainers.circuit_breaker.pipeline import run_key

    by_digest: dict[str, Path] = {}
    for meta in (root / "trained").glob("*/artifact.json"):
        d = json.loads(meta.read_text(encoding="utf-8"))
        by_digest[str(d.get("digest"))] = meta.parent
    digest_of = {
        arm: run.model_digests["baseline" if arm == "baseline" else run_key(arm, seed)]
        for arm in ("baseline", *arms)
    }
    missing = [a for a in ("baseline", *arms) if digest_of[a] not in by_digest]
    if missing:
        raise HarnessError(
            f"{root}/trained: no artifact for arm(s) {missing} (digests "
            f"{[digest_of[a][:12] for a in missing]}); delete {root} and rerun"
        )
    return digest_of, {arm: by_digest[digest] for arm, digest in digest_of.items()}


def _merged_arm(baseline_dir: Path, adapter: Path, tokenizer: Any, *, name: str) -> Generator:
    """The baseline with the arm's LoRA adapter merged in: served weights = base + adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness.backends.hf import HFGenerator, quiet_progress

    with quiet_progress():
        base: Any = AutoModelForCausalLM.from_pretrained(baseline_dir)
        merged: Any = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.eval()
    return HFGenerator(merged, tokenizer, name=name, batch_size=1)


def _cell(k: int, n: int, est: Mapping[str, Any] | None) -> str:
    if est is None or n == 0:
        return "—"
    return f"{k}/{n} = {k / n:.3f} [{est['lo']:.3f}, {est['hi']:.3f}]"


def markdown_table(results: Sequence[ArmSuiteResult]) -> str:
    """The docs' results table: counts, rates and exact 95 % intervals per suite × arm."""
    rows = [
        "| suite | arm | pairs (of suite) | utility under attack | targeted ASR "
        "| benign utility | pairs with a tool call | wall s | calls over context |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.suite} | {r.arm} | {r.n_pairs} ({r.n_pairs_total}) "
            f"| {_cell(r.utility_successes, r.n_pairs, r.utility_under_attack)} "
            f"| {_cell(r.attack_successes, r.n_pairs, r.targeted_asr)} "
            f"| {_cell(r.benign_successes, r.benign_n, r.benign_utility)} "
            f"| {r.pairs_with_tool_call}/{r.n_pairs} | {r.wall_s:.0f} "
            f"| {r.adapter['over_context']}/{r.adapter['requests']} |"
        )
    return "\n".join(rows)


def _default_cache() -> Path:
    return get_settings().cache_dir


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m harness.evaluators.agentdojo_lane",
        description="AgentDojo lane: circuit-breaker arms against important_instructions.",
    )
    ap.add_argument("--suite", action="append", choices=AGENTDOJO_SUITES, help="repeatable")
    ap.add_argument(
        "--arm",
        action="append",
        choices=("baseline", "adv_sft", "cb", CONTROL_NOOP),
        help=f"repeatable; default baseline + cb + {CONTROL_NOOP} (the do-nothing utility floor)",
    )
    ap.add_argument("--max-pairs", type=int, default=None, help="seeded subset per suite")
    ap.add_argument("--pair-seed", type=int, default=0)
    ap.add_argument("--no-benign", action="store_true")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--adapter-mode", choices=("native", "passthrough"), default="native")
    ap.add_argument("--out", type=Path, required=True, help="evidence directory")
    ap.add_argument("--cache-dir", type=Path, default=None, help="default $HARNESS_CACHE_DIR")
    ap.add_argument("--venv", type=Path, default=None, help="agentdojo venv")
    ap.add_argument(
        "--phase-result",
        type=Path,
        default=None,
        help="pin a cached circuit-breaker run (cb-phase-*.json); default: today's config",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = AgentDojoLaneConfig(
            suites=tuple(args.suite or ("banking",)),
            max_pairs=args.max_pairs,
            pair_seed=args.pair_seed,
            benign=not args.no_benign,
            max_tokens=args.max_tokens,
            adapter_mode=args.adapter_mode,
        )
        python = find_agentdojo_python(args.venv)
        wanted = list(args.arm or ("baseline", "cb", CONTROL_NOOP))
        model_arms = tuple(a for a in wanted if a != CONTROL_NOOP)
        gens: dict[str, Generator] = {}
        info: dict[str, dict[str, str]] = {}
        if model_arms:
            loaded, info = circuit_breaker_arms(
                args.cache_dir or _default_cache(),
                arms=model_arms,
                phase_result=args.phase_result,
            )
            gens.update(loaded)
        if CONTROL_NOOP in wanted:
            gens[CONTROL_NOOP] = NoToolCallControl()
            info[CONTROL_NOOP] = {"adapter": "none", "kind": "control: never calls a tool"}
        lane = run_lane(gens, config=config, out_dir=args.out, python=python, arm_info=info)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(lane.results))
    for p in lane.paired:
        print(f"McNemar {p['arm']} vs {p['baseline']} on {p['suite']}: p={p['p_two_sided']:.3g}")
    print(f"evidence: {Path(args.out) / 'agentdojo-lane.json'}")
    return 0


app = typer.Typer(
    help="AgentDojo lane: utility and targeted ASR per suite, with and without the adapter.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """AgentDojo lane (a group, so ``run`` stays a subcommand when more are added)."""


@app.command("run")
def run_command(
    out: Annotated[Path, typer.Option(help="evidence directory")],
    suite: Annotated[list[str] | None, typer.Option(help="repeatable; default banking")] = None,
    arm: Annotated[
        list[str] | None,
        typer.Option(help=f"repeatable: baseline, adv_sft, cb, {CONTROL_NOOP}"),
    ] = None,
    max_pairs: Annotated[int | None, typer.Option(help="seeded subset per suite")] = None,
    pair_seed: int = 0,
    benign: Annotated[bool, typer.Option(help="also run user tasks without injections")] = True,
    max_tokens: int = 128,
    adapter_mode: str = "native",
    cache_dir: Path | None = None,
    venv: Path | None = None,
    phase_result: Annotated[Path | None, typer.Option(help="pin a cb-phase-*.json")] = None,
) -> None:
    """Serve the circuit-breaker arms on 127.0.0.1 and run agentdojo's client against them."""
    argv = ["--out", str(out), "--pair-seed", str(pair_seed), "--max-tokens", str(max_tokens)]
    argv += ["--adapter-mode", adapter_mode]
    for s in suite or ():
        argv += ["--suite", s]
    for a in arm or ():
        argv += ["--arm", a]
    if max_pairs is not None:
        argv += ["--max-pairs", str(max_pairs)]
    if not benign:
        argv.append("--no-benign")
    for flag, value in (
        ("--cache-dir", cache_dir),
        ("--venv", venv),
        ("--phase-result", phase_result),
    ):
        if value is not None:
            argv += [flag, str(value)]
    raise typer.Exit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
