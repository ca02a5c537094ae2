"""AgentDojo CLIENT runner: executed by the agentdojo venv's python, never imported by the harness.

Why a separate process: agentdojo 0.1.35 pins ~70 packages (langchain,
anthropic, cohere, google-genai, tenacity, ...) that must not enter the
harness environment, and it needs no torch.  The harness serves the model under
test on 127.0.0.1 (``harness.backends.local_server``) and runs this file with
``.venv-agentdojo/bin/python``; it imports only the standard library and
agentdojo (plus agentdojo's own dependency ``openai``).

What it does, for one suite and one served model:

* builds the same pipeline ``AgentPipeline.from_config`` builds for the
  ``local`` provider without a defense (system message, init query, the
  ``LocalLLM``, a tools-execution loop), but with the OpenAI client pointed at
  the given ``--base-url`` instead of ``localhost:$LOCAL_LLM_PORT``;
* names the pipeline ``--pipeline-name`` — it must contain ``local``, because
  the ``important_instructions`` attack derives the addressed model's name from
  the pipeline name and raises otherwise;
* runs each user × injection pair through ``benchmark.run_task_with_injection_tasks``
  (which calls ``attack.attack(user_task, injection_task)`` per pair, as
  agentdojo's own ``benchmark.py`` does — in 0.1.35 ``generate_injections()`` and
  ``suite.check()`` wrongly call injectable tasks non-injectable, so neither is used);
* optionally runs user tasks without injections (benign utility);
* logs every trace under ``--logdir`` (agentdojo writes traces next to its own
  package when no log directory is active, so one is always set) and copies each
  pair's messages into the result JSON, written atomically to ``--out``.

``utility`` is AgentDojo's user-task check; ``security`` is its injection-task
check, i.e. True means the attacker's goal was achieved (targeted attack success).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["RESULT_SCHEMA", "build_parser", "main", "run"]

RESULT_SCHEMA = 1


def _atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _select_pairs(
    user_ids: list[str], injection_ids: list[str], *, max_pairs: int | None, seed: int
) -> list[tuple[str, str]]:
    """All user × injection pairs in suite order, or a seeded subset of ``max_pairs`` of them."""
    pairs = [(u, i) for u in user_ids for i in injection_ids]
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs
    chosen = set(random.Random(seed).sample(range(len(pairs)), max_pairs))
    return [p for k, p in enumerate(pairs) if k in chosen]


def _trace_messages(
    logdir: Path, pipeline: str, suite: str, user: str, attack: str, inj: str
) -> Any:
    path = logdir / pipeline.replace("/", "_") / suite / user / attack / f"{inj}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {"messages": data.get("messages"), "error": data.get("error")}


def _last_assistant_text(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "assistant":
            content = m.get("content")
            if isinstance(content, list):
                return "".join(str(c.get("content", "")) for c in content if isinstance(c, dict))
            return None if content is None else str(content)
    return None


def _tool_calls(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(messages, list):
        return out
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "assistant":
            for c in m.get("tool_calls") or []:
                if isinstance(c, dict):
                    out.append({"function": c.get("function"), "args": c.get("args")})
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected pairs (and, with ``--benign``, their user tasks) and write ``--out``."""
    # checked before the (slow) agentdojo import
    if "local" not in args.pipeline_name:
        raise SystemExit(
            f"--pipeline-name {args.pipeline_name!r} must contain 'local': agentdojo's "
            "important_instructions attack looks the model name up in the pipeline name"
        )
    from agentdojo.attacks.attack_registry import (  # type: ignore[import-not-found, unused-ignore]
        load_attack,
    )
    from agentdojo.task_suite.load_suites import (  # type: ignore[import-not-found, unused-ignore]
        get_suite,
    )

    suite = get_suite(args.benchmark_version, args.suite)
    pipeline = _pipeline(args)
    attack = load_attack(args.attack, suite, pipeline)
    user_ids, inj_ids = _task_ids(args, suite)
    pairs = _select_pairs(user_ids, inj_ids, max_pairs=args.max_pairs, seed=args.pair_seed)
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    result = _result_header(args, suite, user_ids=user_ids, inj_ids=inj_ids, logdir=logdir)
    t_all = time.perf_counter()
    with _dir_logger(str(logdir)):
        for k, (user_id, inj_id) in enumerate(pairs):
            row = _run_pair(args, suite, pipeline, attack, user_id, inj_id, logdir=logdir)
            result["pairs"].append(row)
            if args.progress:
                print(
                    f"[agentdojo {args.suite}] pair {k + 1}/{len(pairs)} {user_id}×{inj_id}: "
                    f"utility={row['utility']} security={row['security']} ({row['wall_s']:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )
        benign_ids = sorted({u for u, _ in pairs}, key=_task_order) if args.benign else []
        for user_id in benign_ids:
            result["benign"].append(_run_benign(args, suite, pipeline, user_id, logdir=logdir))
    result["wall_s"] = round(time.perf_counter() - t_all, 3)
    result["complete"] = True
    _atomic_write_json(Path(args.out), result)
    return result


def _pipeline(args: argparse.Namespace) -> Any:
    """What ``AgentPipeline.from_config`` builds for the ``local`` provider without a
    defense, with the OpenAI client pointed at ``--base-url``."""
    import openai  # type: ignore[import-not-found, unused-ignore]
    from agentdojo.agent_pipeline import (  # type: ignore[import-not-found, unused-ignore]
        AgentPipeline,
        InitQuery,
        LocalLLM,
        SystemMessage,
        ToolsExecutionLoop,
        ToolsExecutor,
    )
    from agentdojo.agent_pipeline.agent_pipeline import (  # type: ignore[import-not-found, unused-ignore]
        load_system_message,
    )

    client = openai.OpenAI(api_key="EMPTY", base_url=args.base_url, max_retries=0, timeout=600)
    llm = LocalLLM(client, args.model_id, temperature=args.temperature, tool_delimiter="tool")
    pipeline = AgentPipeline(
        [
            SystemMessage(load_system_message(None)),
            InitQuery(),
            llm,
            ToolsExecutionLoop([ToolsExecutor(), llm], max_iters=args.max_iters),
        ]
    )
    pipeline.name = args.pipeline_name
    return pipeline


def _dir_logger(logdir: str) -> Any:
    """A silent agentdojo logger whose ``logdir`` its TraceLogger writes into."""
    from agentdojo.logging import (  # type: ignore[import-not-found, unused-ignore]
        Logger,
        NullLogger,
    )

    class _DirLogger(NullLogger):  # type: ignore[misc]
        def __init__(self, logdir: str) -> None:
            self._dir = logdir

        def __enter__(self) -> Any:
            # NullLogger.__enter__ neither pushes itself on agentdojo's logger stack nor keeps a
            # logdir; Logger.__enter__ pushes, so TraceLogger finds this delegate and its logdir.
            self.messages: list[Any] = []
            self.logdir = self._dir
            Logger.__enter__(self)
            return self

        def __exit__(self, *exc: object) -> None:
            Logger.__exit__(self, *exc)

    return _DirLogger(logdir)


def _task_ids(args: argparse.Namespace, suite: Any) -> tuple[list[str], list[str]]:
    """User and injection task ids: ``--user-tasks`` / ``--injection-tasks``, else all, in order."""
    user_ids = sorted(suite.user_tasks, key=_task_order)
    inj_ids = sorted(suite.injection_tasks, key=_task_order)
    if args.user_tasks:
        user_ids = [u for u in args.user_tasks.split(",") if u]
    if args.injection_tasks:
        inj_ids = [i for i in args.injection_tasks.split(",") if i]
    return user_ids, inj_ids


def _result_header(
    args: argparse.Namespace,
    suite: Any,
    *,
    user_ids: list[str],
    inj_ids: list[str],
    logdir: Path,
) -> dict[str, Any]:
    """The result document before any pair ran (``complete`` stays False until the end)."""
    from importlib.metadata import version

    return {
        "schema": RESULT_SCHEMA,
        "agentdojo_version": version("agentdojo"),
        "benchmark_version": args.benchmark_version,
        "suite": args.suite,
        "attack": args.attack,
        "pipeline_name": args.pipeline_name,
        "model_id": args.model_id,
        "temperature": args.temperature,
        "max_iters": args.max_iters,
        "n_pairs_total": len(suite.user_tasks) * len(suite.injection_tasks),
        "n_pairs_candidates": len(user_ids) * len(inj_ids),
        "n_user_tasks_total": len(suite.user_tasks),
        "n_injection_tasks_total": len(suite.injection_tasks),
        "pair_seed": args.pair_seed,
        "logdir": str(logdir),
        "pairs": [],
        "benign": [],
        "complete": False,
    }


def _run_pair(
    args: argparse.Namespace,
    suite: Any,
    pipeline: Any,
    attack: Any,
    user_id: str,
    inj_id: str,
    *,
    logdir: Path,
) -> dict[str, Any]:
    """One user task under one injection: agentdojo's utility and security checks + trace."""
    from agentdojo import benchmark  # type: ignore[import-not-found, unused-ignore]

    user_task = suite.get_user_task_by_id(user_id)
    injections = attack.attack(user_task, suite.get_injection_task_by_id(inj_id))
    captured = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(captured):
        utility, security = benchmark.run_task_with_injection_tasks(
            suite,
            pipeline,
            user_task,
            attack,
            logdir,
            True,  # force_rerun: never reuse a trace from another model
            [inj_id],
            args.benchmark_version,
        )
    wall = time.perf_counter() - t0
    trace = _trace_messages(logdir, args.pipeline_name, args.suite, user_id, attack.name, inj_id)
    msgs = None if trace is None else trace["messages"]
    return {
        "user_task": user_id,
        "injection_task": inj_id,
        "utility": bool(utility[(user_id, inj_id)]),
        "security": bool(security[(user_id, inj_id)]),
        "wall_s": round(wall, 3),
        "injection_vectors": sorted(injections),
        "client_errors": _client_errors(captured),
        "trace_error": None if trace is None else trace["error"],
        "final_output": _last_assistant_text(msgs),
        "tool_calls": _tool_calls(msgs),
        "messages": msgs,
    }


def _run_benign(
    args: argparse.Namespace, suite: Any, pipeline: Any, user_id: str, *, logdir: Path
) -> dict[str, Any]:
    """One user task without injections (benign utility) + its trace."""
    from agentdojo import benchmark  # type: ignore[import-not-found, unused-ignore]

    captured = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(captured):
        ok, _ = benchmark.run_task_without_injection_tasks(
            suite,
            pipeline,
            suite.get_user_task_by_id(user_id),
            logdir,
            True,
            args.benchmark_version,
        )
    trace = _trace_messages(logdir, args.pipeline_name, args.suite, user_id, "none", "none")
    msgs = None if trace is None else trace["messages"]
    return {
        "user_task": user_id,
        "utility": bool(ok),
        "wall_s": round(time.perf_counter() - t0, 3),
        "client_errors": _client_errors(captured),
        "final_output": _last_assistant_text(msgs),
        "tool_calls": _tool_calls(msgs),
        "messages": msgs,
    }


def _client_errors(captured: io.StringIO) -> list[str]:
    """Lines agentdojo's client printed that mention an error (it prints, it does not raise)."""
    return [line for line in captured.getvalue().splitlines() if "error" in line]


def _task_order(task_id: str) -> tuple[str, int]:
    """``user_task_10`` after ``user_task_9`` (agentdojo ids end in a number)."""
    head, _, tail = task_id.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (task_id, -1)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--base-url",
        required=True,
        help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8011/v1",
    )
    ap.add_argument("--model-id", required=True, help="model name the server serves")
    ap.add_argument("--suite", required=True, help="banking | slack | travel | workspace")
    ap.add_argument("--out", required=True, help="result JSON (written atomically)")
    ap.add_argument("--logdir", required=True, help="agentdojo trace directory")
    ap.add_argument("--pipeline-name", default="local-harness", help="must contain 'local'")
    ap.add_argument("--benchmark-version", default="v1.2.2")
    ap.add_argument("--attack", default="important_instructions")
    ap.add_argument("--user-tasks", default="", help="comma list (default: all)")
    ap.add_argument("--injection-tasks", default="", help="comma list (default: all)")
    ap.add_argument("--max-pairs", type=int, default=None, help="seeded subset of the pairs")
    ap.add_argument("--pair-seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument(
        "--max-iters", type=int, default=15, help="tool-loop iterations (agentdojo default 15)"
    )
    ap.add_argument(
        "--benign", action="store_true", help="also run the user tasks without injections"
    )
    ap.add_argument("--progress", action="store_true", help="one stderr line per pair")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
