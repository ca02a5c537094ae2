"""Per-answer latency with thoughts, timed per session (a property of the machine now).

Each held-out prompt is answered once as a user would be (batch 1, greedy thought, then
the answer from the mixed distribution; :func:`trainers.quiet_star.thoughts.answer_with_thought`)
after two warm-up answers; wall seconds per answer (and the thread's CPU seconds, which
show what an unloaded core would take) are kept with the visible text, which
is also checked to contain no thought token.  The training record is cached, this
timing is not.  A :class:`harness.machine_load.LoadMonitor` brackets the timed answers
(sampled between them), so a timing taken on an overloaded machine cannot become a FAIL
(:func:`harness.decision.guard_machine_load`): contention only makes answers slower.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from harness.data.arithmetic import make_splits
from harness.machine_load import LoadMonitor
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.pipeline import QuietStarRun, load_arm
from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.thoughts import answer_with_thought
from trainers.quiet_star.tokens import THOUGHT_TOKENS

__all__ = ["measure_latency"]


def measure_latency(
    run: QuietStarRun, cfg: QuietStarConfig, *, arm: str = "main"
) -> dict[str, Any]:
    """Time ``cfg.n_latency`` held-out answers of ``arm`` (module doc)."""
    torch.set_num_threads(cfg.threads)
    model, tok, head = load_arm(run, arm)
    vocab = Vocab.of(tok)
    split = cfg.eval_split
    # the same items the run scored: the champion's training questions were dropped there
    dropped = set(
        run.record["input"].get("overlap", {}).get("dropped", {}).get(f"{split}_seeds", [])
    )
    made = make_splits(cfg.splits(), difficulties=cfg.levels)[split]  # type: ignore[arg-type,index]
    items = [it for it in made if it.seed not in dropped][: cfg.n_latency]
    for it in items[:2]:
        answer_with_thought(model, head, vocab.prompt(it), vocab, max_thought=cfg.max_thought)
    rows = []
    monitor = LoadMonitor(threads=cfg.threads).start()
    for it in items:
        monitor.sample()
        t0, c0 = time.perf_counter(), time.thread_time()
        ans = answer_with_thought(model, head, vocab.prompt(it), vocab, max_thought=cfg.max_thought)
        dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
        rows.append(
            {
                "id": f"{split}:{it.seed}",
                "seconds": dt,
                "cpu_seconds": cpu,
                "answer": ans.text,
                "correct": ans.text == it.answer,
                "thought_tokens": len(ans.thought_ids),
                "visible_has_thought_token": any(t in ans.text for t in THOUGHT_TOKENS)
                or any(i in vocab.thought_ids for i in ans.answer_ids),
            }
        )
    reading = monitor.stop()
    return {
        "rows": rows,
        "threads": cfg.threads,
        "loadavg": reading.loadavg_1min,
        "cpu_count": reading.cpus,
        "machine_load": reading.model_dump(mode="json"),
    }
