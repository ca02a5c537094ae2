"""WorkerPool fault policy with real local drivers (no Docker needed)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sandbox.base import ExecStatus, Program
from sandbox.local import LocalSandbox, _LocalChannel


def _driver_pids(sb: LocalSandbox) -> list[int]:
    return [w.channel.proc.pid for w in sb.pool.workers() if isinstance(w.channel, _LocalChannel)]


def test_driver_killed_mid_batch_retries_once_and_keeps_order() -> None:
    with LocalSandbox(pool_size=2) as sb:
        progs = [Program(f"import time\ntime.sleep(0.03)\nprint({i})") for i in range(80)]
        victim = _driver_pids(sb)[0]
        threading.Timer(0.5, lambda: os.kill(victim, signal.SIGKILL)).start()
        results = sb.run(progs, timeout_s=10)
        assert [r.program_id for r in results] == [p.id for p in progs]
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(80)]
        assert all(r.status is ExecStatus.PASSED for r in results)
        assert any(r.attempts == 2 for r in results)
        assert victim not in _driver_pids(sb) and not sb.health()


def test_hung_worker_is_replaced_after_the_host_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver that stops answering (SIGSTOP) is killed at timeout + grace; the program re-runs."""
    import sandbox.pool as pool_mod

    monkeypatch.setattr(pool_mod, "HOST_GRACE_S", 1.0)
    with LocalSandbox(pool_size=1) as sb:
        victim = _driver_pids(sb)[0]
        threading.Timer(0.3, lambda: os.kill(victim, signal.SIGSTOP)).start()
        t0 = time.monotonic()
        results = sb.run([Program("import time\ntime.sleep(1)\nprint('done')")], timeout_s=2)
        assert results[0].status is ExecStatus.PASSED and results[0].attempts == 2
        assert time.monotonic() - t0 < 15
