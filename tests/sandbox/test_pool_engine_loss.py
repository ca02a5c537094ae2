"""The pool's engine-loss rule with real local drivers (no Docker needed).

A worker that dies twice under the same program normally makes that program a
``sandbox_error`` (lost twice, the second time alone).  When the channel says
its engine went away (``Channel.infrastructure_lost``), the program is innocent
and simply runs again — what a multi-engine Docker pool relies on when an
engine stops mid-batch (tests/sandbox/test_multi_engine.py does it for real).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sandbox.base import ExecStatus, Program
from sandbox.local import LocalSandbox, _LocalChannel

SLOW = Program("import time\ntime.sleep(1.5)\nprint('done')")


def _kill_first_two_drivers(sb: LocalSandbox, killed: list[int]) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 30
        while len(killed) < 2 and time.monotonic() < deadline:
            pids = [
                w.channel.proc.pid
                for w in sb.pool.workers()
                if isinstance(w.channel, _LocalChannel)
            ]
            if pids and pids[0] not in killed:
                time.sleep(0.4)  # the program is running on it now
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("engine_gone", [True, False])
def test_a_lost_engine_does_not_count_against_the_program(
    engine_gone: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_LocalChannel, "infrastructure_lost", lambda self: engine_gone)
    killed: list[int] = []
    with LocalSandbox(pool_size=1) as sb:
        killer = _kill_first_two_drivers(sb, killed)
        (result,) = sb.run([SLOW], timeout_s=10)
        killer.join(30)
    assert len(killed) == 2
    if engine_gone:
        assert result.status is ExecStatus.PASSED and result.stdout == "done\n"
        assert result.attempts == 3
    else:
        assert result.status is ExecStatus.SANDBOX_ERROR and "lost twice" in result.detail
