"""Execution-based reward for GRPO rollouts: 1 when a completion's tests pass in the sandbox.

TRL's ``GRPOTrainer`` calls a reward function with the batch's prompts, completions
and the dataset's other columns as keyword lists.  :class:`ExecutionReward` runs
every completion followed by its row's ``tests`` as one program, all programs of the
call in one :meth:`~sandbox.base.Sandbox.run` batch (the warm pool runs them in
parallel), and returns 1.0 for ``passed`` — the sandbox's status that needs the
completion proof, so a completion that exits early (``sys.exit(0)``) or kills its
interpreter scores 0 — and 0.0 for everything else.  A completion is hostile model
output; the sandbox isolates it from the trainer and from the other completions, and
the program is built by :func:`sandbox.guard.guarded_program`, so a completion cannot
forge its tests either (an ``__eq__`` that always holds, a rebound ``abs``, a patched
``math``): the tests run in a fresh namespace against guarded copies of the
completion's functions, whose results must be builtin values (reward hacking in RL is
exactly this forgery, learned).  The tests must import what they use themselves; they
see the completion's functions (guarded) and builtin-valued constants, nothing else.
It keeps per-call counts and wall time so a smoke test can show what the sandbox served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.base import ExecStatus, Program, Sandbox
from sandbox.guard import guarded_program

__all__ = ["ExecutionReward", "completion_text"]


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or a list of chat messages (their contents)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


@dataclass
class ExecutionReward:
    """``reward(prompts, completions, tests=[...])`` → 1.0 per completion whose tests pass."""

    sandbox: Sandbox
    timeout_s: float = 5.0
    calls: int = 0
    programs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: one batch at a time: a pool's workers serve one ``run`` call, and rollout workers
    #: that share this reward from several threads must not interleave on them
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float]:
        tests = columns.get("tests")
        if tests is None or len(tests) != len(completions):
            raise ValueError(
                "ExecutionReward needs a 'tests' dataset column (one test program per prompt); "
                "add it to the GRPO train_dataset"
            )
        with self._lock:
            t0 = time.perf_counter()
            programs = [
                Program(
                    guarded_program(code=completion_text(c), test=t),
                    id=f"rollout:{self.programs + i}",
                )
                for i, (c, t) in enumerate(zip(completions, tests, strict=True))
            ]
            results = self.sandbox.run(programs, timeout_s=self.timeout_s)
            self.calls += 1
            self.programs += len(programs)
            self.seconds += time.perf_counter() - t0
            for r in results:
                self.statuses[r.status.value] = self.statuses.get(r.status.value, 0) + 1
        return [1.0 if r.status is ExecStatus.PASSED else 0.0 for r in results]
