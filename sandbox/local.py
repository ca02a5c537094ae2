"""LocalSandbox: the same driver as a host subprocess, with rlimits only.

This is the **weaker** fallback for machines without Docker. Programs run as
forks of a host Python with per-program rlimits (CPU, address space, file
size, open files), a fresh temporary working directory, a clean environment
and a process-tree kill after every program; when the host runs as root the
child additionally drops to ``nobody``. There is *no* filesystem, network or
PID isolation: a program can read what the host user can read and open
sockets. Evidence records ``sandbox_kind="local"`` so reports can say so, and
nothing ever falls back to it silently when Docker was requested.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import SandboxUnavailable

from ._io import FdLineReader, StderrTail, kill_process_tree
from .base import (
    DEFAULT_MAX_SOURCE_BYTES,
    DEFAULT_MEMORY_MB,
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT_S,
    ExecResult,
    Program,
    Sandbox,
    default_pool_size,
    validate_limits,
)
from .pool import Channel, Worker, WorkerPool, driver_requests

__all__ = ["LocalSandbox"]

DRIVER_PATH = Path(__file__).with_name("driver.py")
_FALLBACK_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def _world_readable(path: Path) -> bool:
    """True when an unprivileged user can traverse to and read ``path`` (mode bits only)."""
    p = path.resolve()
    for parent in reversed(p.parents):
        if not os.stat(parent).st_mode & 0o001:
            return False
    return bool(os.stat(p).st_mode & 0o004)


def _stdlib_dir(python: str) -> Path | None:
    try:
        out = subprocess.run(
            [python, "-I", "-c", "import os; print(os.path.dirname(os.__file__))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def choose_python(requested: str | None) -> str:
    """Interpreter for local programs.

    As root the driver drops programs to ``nobody``; that only works with an
    interpreter whose standard library ``nobody`` can read (a pyenv build under a
    0700 ``/root`` is not). Then a world-readable system Python is used instead,
    and if there is none we refuse rather than run untrusted code as root.
    """
    first = requested or sys.executable
    if os.geteuid() != 0:
        return first
    candidates = [first] if requested else [first, *_FALLBACK_PYTHONS]
    for py in candidates:
        lib = _stdlib_dir(py)
        if lib is not None and _world_readable(lib / "os.py"):
            return py
    raise SandboxUnavailable(
        f"LocalSandbox runs programs as 'nobody' when the host runs as root, but the standard "
        f"library of {candidates} is not readable by 'nobody'; fix: pass "
        "LocalSandbox(python=<interpreter with a world-readable stdlib>), run as a non-root "
        "user, or use DockerSandbox"
    )


class _LocalChannel(Channel):
    def __init__(self, python: str, tmp_root: str) -> None:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "GATE_HARNESS_SANDBOX_TMP": tmp_root}
        self.proc = subprocess.Popen(
            [python, "-I", str(DRIVER_PATH), "local"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.reader = FdLineReader(self.proc.stdout.fileno())
        self.tail = StderrTail()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self._killed = False

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.tail.add(chunk)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_line(self, deadline: float) -> bytes:
        return self.reader.read_line(deadline)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        kill_process_tree(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._drain.join(timeout=2)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def diagnostics(self) -> str:
        return self.tail.text()


class LocalSandbox(Sandbox):
    """Subprocess + rlimits fallback (weaker isolation; labelled ``local`` in evidence)."""

    kind = "local"

    def __init__(
        self,
        *,
        pool_size: int | None = None,
        python: str | None = None,
        recycle_after: int = 5000,
        fsize_mb: int = 16,
        nofile: int = 256,
        max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    ) -> None:
        self._size = pool_size or default_pool_size()
        self._python = choose_python(python)
        self._tmp = tempfile.mkdtemp(prefix="gate-harness-local-")
        os.chmod(self._tmp, 0o711)
        self._fsize_mb = fsize_mb
        self._nofile = nofile
        self._pool = WorkerPool(
            self._make_worker,
            size=self._size,
            kind=self.kind,
            image_id=lambda: None,
            recycle_after=recycle_after,
            max_source_bytes=max_source_bytes,
        )
        self._closed = False
        self._pool.start()
        self._finalizer = weakref.finalize(self, _close_pool, self._pool, self._tmp)
        atexit.register(self.close)

    def _make_worker(self, serial: int) -> Worker:
        return Worker(_LocalChannel(self._python, self._tmp), name=f"local-{os.getpid()}-{serial}")

    @property
    def parallelism(self) -> int:
        return self._size

    @property
    def pool(self) -> WorkerPool:
        return self._pool

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["isolation"] = (
            "weaker: rlimits + fresh cwd/env + process-tree kill (+ uid nobody when root); "
            "no filesystem, network or PID isolation"
        )
        d["python"] = self._python
        return d

    def run(
        self,
        programs: Sequence[Program],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> list[ExecResult]:
        validate_limits(timeout_s=timeout_s, memory_mb=memory_mb, output_cap=output_cap)
        reqs = driver_requests(
            programs,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            output_cap=output_cap,
            fsize_mb=self._fsize_mb,
            nofile=self._nofile,
        )
        return self._pool.run(programs, reqs, timeout_s)

    def health(self) -> list[str]:
        """Problems with the pool: driver processes that died."""
        problems = []
        for w in self._pool.workers():
            ch = w.channel
            if isinstance(ch, _LocalChannel) and ch.proc.poll() is not None:
                problems.append(f"driver {w.name} exited with {ch.proc.returncode}")
        return problems

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._finalizer()
            atexit.unregister(self.close)


def _close_pool(pool: WorkerPool, tmp: str) -> None:
    pool.close()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
