"""In-sandbox driver: runs untrusted programs one at a time from a warm Python.

Standard library only: this file is shipped verbatim into the container
(``python3 -I -c <this source> container``) and also run on the host by
:class:`sandbox.local.LocalSandbox` (``python -I driver.py local``).

Why this shape:

* **Warm fork.** Starting CPython costs ~20 ms; forking a Python that has
  already imported the usual stdlib costs well under 1 ms. So the driver
  imports common modules once, freezes the GC (fewer copy-on-write faults) and
  forks one child per program.
* **PID 1 in the container.** Inside Docker the driver *is* the container's
  init. The kernel drops signals to a namespace init that has no handler, so
  a program cannot kill its driver; orphans (double-forked daemons) are
  re-parented to the driver, and after every program ``kill(-1, SIGKILL)``
  atomically kills every other process in the namespace — fork bombs and
  daemonised children included — before the next program starts.
* **Nothing survives a program.** After each program ``/tmp``, ``/dev/shm``
  and ``/dev/mqueue`` are wiped; the next child is a fresh fork of the driver
  (fresh env, cwd, modules), so no state can pass between programs.
* **Protocol.** Requests and results are JSON lines on fd 0 / fd 1. The
  driver is made non-dumpable so a program cannot open ``/proc/1/fd/1`` and
  forge results, and children close every inherited descriptor.

Request: ``{"id", "src", "stdin", "timeout", "mem_mb", "cap", "fsize_mb", "nofile"}``.
Result: ``{"id", "rc", "sig", "timed_out", "memerr", "oomkill", "stopped",
"out", "err", "trunc", "dur", "spawn_error", "anomaly"}``.
"""

from __future__ import annotations

import _signal
import atexit
import contextlib
import ctypes
import gc
import io
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import types

PROTOCOL = 1
_PRECOMPILE_MAX = 256 * 1024
NOBODY = 65534
_READ = 65536
_CONTAINER_WIPE = ("/tmp", "/dev/shm", "/dev/mqueue")
# Modules HumanEval-style programs import most (typing: 13 %, math: 4 %, …) plus what a
# failing program needs for its traceback. Each preloaded module makes *every* fork a
# little dearer, so this list is deliberately short; see docs/sandbox.md.
_PRELOAD = [
    "typing",
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "string",
    "heapq",
    "bisect",
    "copy",
    "traceback",
    "linecache",
]

_INBUF = bytearray()


def _preload() -> None:
    """Import the modules HumanEval-style programs use, so children start warm."""
    for name in _PRELOAD:
        with contextlib.suppress(Exception):  # a minimal image may lack one; not fatal
            __import__(name)


def _set_nondumpable() -> None:
    """PR_SET_DUMPABLE=0: /proc/<driver>/fd and /mem become root-owned, unopenable by programs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except Exception:
        pass


def _set_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: orphans come back to us (local mode) so we can kill them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)
    except Exception:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


_OUTBUF = bytearray()
_OUT_SINCE = [0.0]
#: results are held back while more requests are already queued (fewer writes, fewer
#: wake-ups of the engine and the host), but never longer than this or this many bytes
_FLUSH_AFTER_S = 0.05
_FLUSH_BYTES = 256 * 1024


def _flush() -> None:
    if _OUTBUF:
        _write_all(1, bytes(_OUTBUF))
        _OUTBUF.clear()


def _emit(obj: dict[str, object], *, hold: bool = False) -> None:
    """Queue one JSON result line; write now unless ``hold`` and the batch is young and small."""
    if not _OUTBUF:
        _OUT_SINCE[0] = time.monotonic()
    _OUTBUF.extend((json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii"))
    if not hold or len(_OUTBUF) > _FLUSH_BYTES or time.monotonic() - _OUT_SINCE[0] > _FLUSH_AFTER_S:
        _flush()


def _read_line() -> bytes | None:
    """Read one request line from fd 0 with our own buffer (children clear it)."""
    while True:
        i = _INBUF.find(b"\n")
        if i >= 0:
            line = bytes(_INBUF[:i])
            del _INBUF[: i + 1]
            return line
        _flush()  # about to block: everything finished so far must be on its way
        try:
            chunk = os.read(0, _READ)
        except InterruptedError:
            continue
        if not chunk:
            return None
        _INBUF.extend(chunk)


def _oom_kills() -> int:
    """Kernel OOM-kill counter of our memory cgroup (v1 or v2), or -1 when unreadable."""
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path, "rb") as fh:
                for line in fh:
                    if line.startswith(b"oom_kill "):
                        return int(line.split()[1])
        except OSError:
            continue
    return -1


def _wipe_dir(path: str) -> bool:
    """Remove everything below ``path`` (keeping ``path``); repair hostile permissions first."""
    ok = True
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return True
    except PermissionError:
        try:
            os.chmod(path, 0o700)
            entries = list(os.scandir(path))
        except OSError:
            return False
    for entry in entries:
        full = entry.path
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError):
                os.chmod(full, 0o700)
            ok = _wipe_dir(full) and ok
            try:
                os.rmdir(full)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        else:
            try:
                os.unlink(full)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
    return ok


def _direct_children(pid: int) -> list[int]:
    """Children of ``pid`` via /proc/<pid>/task/*/children (cheap; no full /proc scan)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _proc_children_tree(root: int) -> list[int]:
    """All descendants of ``root`` (local mode cleanup; orphans come back to us as subreaper)."""
    out: list[int] = []
    frontier = [root]
    seen = {root}
    while frontier:
        kids = [c for c in _direct_children(frontier.pop()) if c not in seen]
        seen.update(kids)
        out.extend(kids)
        frontier.extend(kids)
    return out


# Plain ints and the C-level ``_signal`` module: ``signal.signal`` converts through the
# Signals enum, which costs a child ~100 copy-on-write page faults (~1 ms here).
_RESET_SIGNALS = tuple(
    int(s) for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
)
_SIGINT = int(signal.SIGINT)
_SIG_DFL = int(signal.SIG_DFL)


def _print_exc(src: str, filename: str) -> None:
    """Print the traceback as ``python main.py`` would: program frames only, with source lines.

    The first frame is the driver's own ``exec`` call and is dropped; a compile error
    raised in the driver has no program frames at all, like a SyntaxError from python.
    """
    try:
        import linecache
        import traceback

        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        exc = sys.exc_info()[1]
        if exc is None:
            return
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
    except BaseException:
        pass


def _clean_env() -> None:
    """The environment every program starts from (children only set HOME and TMPDIR)."""
    os.environ.clear()
    os.environ.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        HOME="/tmp",
        TMPDIR="/tmp",
        LANG="C.UTF-8",
        PYTHONIOENCODING="utf-8",
    )


def _std_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """Text streams over fds 0/1/2, built once before forking and never used by the driver.

    The driver speaks the protocol with ``os.write`` only, so these buffers stay empty
    until a child (whose fds 0/1/2 are its own pipes) uses them.
    """
    return (
        io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8"),
        io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        ),
    )


class Driver:
    def __init__(self, mode: str) -> None:
        if mode not in ("container", "local"):
            raise SystemExit(f"driver: unknown mode {mode!r}; use 'container' or 'local'")
        if mode == "container" and os.getpid() != 1:
            # kill(-1) is only safe as a namespace init; refuse rather than kill the host.
            raise SystemExit("driver: container mode requires PID 1 (run as the container command)")
        self.mode = mode
        self.seq = 0
        self.anomaly = ""
        self.drop_to_nobody = mode == "local" and os.geteuid() == 0
        if mode == "local":
            root = os.environ.get("GATE_HARNESS_SANDBOX_TMP") or "/tmp"
            self.base = os.path.realpath(os.path.join(root, f"gate-harness-driver-{os.getpid()}"))
            os.makedirs(self.base, mode=0o711, exist_ok=True)
            os.chmod(self.base, 0o711)
            _set_subreaper()
        else:
            self.base = "/tmp"
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        _set_nondumpable()
        _clean_env()
        self._streams = _std_streams()

    # ---- cleanup --------------------------------------------------------------------------
    def _reap(self, keep: int = 0) -> dict[int, int]:
        statuses: dict[int, int] = {}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            statuses[pid] = status
        return statuses

    def _kill_everything(self) -> bool:
        """Kill every process except the driver; True when none is left."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if self.mode == "container":
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    self._reap()
                    return True
            else:
                pids = _proc_children_tree(os.getpid())
                if not pids:
                    self._reap()
                    return True
                for sig in (signal.SIGSTOP, signal.SIGKILL):
                    for p in pids:
                        with contextlib.suppress(OSError):
                            os.kill(p, sig)
            self._reap()
            time.sleep(0.0005)
        return False

    def _wipe(self, work: str) -> bool:
        if self.mode == "container":
            ok = True
            for d in _CONTAINER_WIPE:
                ok = _wipe_dir(d) and ok
            return ok
        ok = _wipe_dir(work)
        try:
            os.rmdir(work)
        except OSError:
            ok = False
        return ok

    # ---- one program ----------------------------------------------------------------------
    def run(self, req: dict[str, object]) -> dict[str, object]:
        self.seq += 1
        pid_tag = str(req.get("id", self.seq))
        timeout = float(req.get("timeout", 5.0))  # type: ignore[arg-type]
        cap = int(req.get("cap", 65536))  # type: ignore[call-overload]
        work = os.path.join(self.base, f"run{self.seq}")
        os.mkdir(work, 0o700)
        if self.drop_to_nobody:
            os.chown(work, NOBODY, NOBODY)
        stdin_data = str(req.get("stdin", "")).encode("utf-8", "surrogateescape")
        if stdin_data:
            spath = os.path.join(work, ".stdin")
            with open(spath, "wb") as fh:
                fh.write(stdin_data)
            in_fd = os.open(spath, os.O_RDONLY)
            os.unlink(spath)
        else:
            in_fd = os.open("/dev/null", os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        oom0 = _oom_kills() if self.mode == "container" else -1
        t0 = time.monotonic()
        cpu0 = time.process_time()
        child_cpu = 0.0
        faults = 0
        pid = -1
        spawn_error = ""
        code = self._precompile(str(req.get("src", "")), work + "/main.py")
        for attempt in range(50):
            try:
                pid = os.fork()
                break
            except OSError as exc:  # EAGAIN under pids limit: clean and retry
                spawn_error = f"fork failed: {exc}"
                self._kill_everything()
                time.sleep(0.002 * (attempt + 1))
        if pid == 0:
            self._child(req, code, work, in_fd, out_w, err_w, st_w)  # never returns
        for fd in (in_fd, out_w, err_w, st_w):
            os.close(fd)
        res: dict[str, object] = {"id": pid_tag}
        if pid < 0:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            self._wipe(work)
            res.update(spawn_error=spawn_error or "fork failed", dur=0.0)
            return res
        spawn_error = ""
        bufs = {out_r: bytearray(), err_r: bytearray()}
        totals = {out_r: 0, err_r: 0}
        status_bytes = bytearray()
        poller = select.poll()
        for fd in (out_r, err_r, st_r):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        open_fds = {out_r, err_r, st_r}
        deadline = t0 + timeout
        timed_out = stopped = False
        wstatus: int | None = None

        def pump(fd: int) -> None:
            while True:
                try:
                    chunk = os.read(fd, _READ)
                except BlockingIOError:
                    return
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    return
                if fd == st_r:
                    status_bytes.extend(chunk[:16])
                    continue
                totals[fd] += len(chunk)
                room = cap - len(bufs[fd])
                if room > 0:
                    bufs[fd].extend(chunk[:room])

        while wstatus is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait_ms = max(1, int(remaining * 1000) + 1)
            if _OUTBUF:  # results held back must not wait for a slow program
                age = time.monotonic() - _OUT_SINCE[0]
                if age >= _FLUSH_AFTER_S:
                    _flush()
                else:
                    wait_ms = min(wait_ms, max(1, int((_FLUSH_AFTER_S - age) * 1000) + 1))
            for fd, _ev in poller.poll(wait_ms):
                if fd == self.wake_r:
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    pump(fd)
            try:
                wpid, st, ru = os.wait4(pid, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:
                wpid, st, ru = pid, 0, None
            if wpid == pid:
                if ru is not None:
                    child_cpu = ru.ru_utime + ru.ru_stime
                    faults = ru.ru_minflt
                if os.WIFSTOPPED(st):
                    stopped = True
                    break
                wstatus = st
        dur = time.monotonic() - t0
        if wstatus is None:  # timed out or stopped: kill the whole program first
            self._kill_everything_for(pid)
            try:
                _, wstatus, ru = os.wait4(pid, 0)
                child_cpu = ru.ru_utime + ru.ru_stime
                faults = ru.ru_minflt
            except ChildProcessError:
                wstatus = None
        for fd in list(open_fds):
            pump(fd)
        for fd in (out_r, err_r, st_r):
            os.close(fd)
        clean = self._kill_everything()
        wiped = self._wipe(work)
        oom1 = _oom_kills() if self.mode == "container" else -1
        rc = sig = None
        if wstatus is not None:
            if os.WIFEXITED(wstatus):
                rc = os.WEXITSTATUS(wstatus)
            elif os.WIFSIGNALED(wstatus):
                sig = os.WTERMSIG(wstatus)
        anomaly = []
        if not clean:
            anomaly.append("processes survived SIGKILL for 3 s")
        if not wiped:
            anomaly.append("temporary files could not be removed")
        out_b, err_b = bytes(bufs[out_r]), bytes(bufs[err_r])
        res.update(
            rc=rc,
            sig=sig,
            timed_out=timed_out,
            stopped=stopped,
            memerr=b"M" in status_bytes,
            oomkill=oom0 >= 0 and oom1 > oom0 and not timed_out and sig == signal.SIGKILL,
            out=out_b.decode("utf-8", "replace"),
            err=err_b.decode("utf-8", "replace"),
            trunc=totals[out_r] > cap or totals[err_r] > cap,
            dur=dur,
            cpu=child_cpu,
            faults=faults,
            drv_cpu=time.process_time() - cpu0,
            anomaly="; ".join(anomaly),
        )
        return res

    def _kill_everything_for(self, pid: int) -> None:
        """Kill the program and everything it started, without reaping ``pid`` itself."""
        if self.mode == "container":
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            return
        for p in [pid, *_proc_children_tree(pid)]:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)

    @staticmethod
    def _precompile(src: str, filename: str) -> types.CodeType | BaseException | None:
        """Compile small sources in the driver, before forking.

        Compiling inside the child costs ~180 copy-on-write page faults (the parser
        writes all over a shared heap), about 2 ms on this kind of VM, so the driver
        compiles and the child only executes. A compile error is handed to the child,
        which raises it exactly as ``python main.py`` would. Sources above
        ``_PRECOMPILE_MAX`` are compiled in the child, under its rlimits, so a
        pathological source cannot stall or exhaust the driver.
        ``dont_inherit`` keeps the driver's own ``__future__`` flags out of programs.
        """
        if len(src) > _PRECOMPILE_MAX:
            return None
        try:
            return compile(src, filename, "exec", dont_inherit=True)
        except BaseException as exc:  # SyntaxError, RecursionError, MemoryError, …
            return exc

    def _child(
        self,
        req: dict[str, object],
        code_or_exc: types.CodeType | BaseException | None,
        work: str,
        in_fd: int,
        out_w: int,
        err_w: int,
        st_w: int,
    ) -> None:
        """Become the program: new session, dropped fds, rlimits, clean env, then exec the source.

        Runs in the forked child and never returns. Every object it touches costs a
        copy-on-write page fault, so it does as little Python work as possible: the std
        streams were built before the fork and imports happen only when needed.
        """
        code = 1
        try:
            os.setsid()
            _signal.set_wakeup_fd(-1)
            for sig in _RESET_SIGNALS:
                _signal.signal(sig, _SIG_DFL)
            _signal.signal(_SIGINT, _signal.default_int_handler)
            _INBUF.clear()
            _OUTBUF.clear()
            try:  # make the kernel OOM killer pick programs, never the driver
                fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
                os.write(fd, b"1000")
                os.close(fd)
            except OSError:
                pass
            if self.drop_to_nobody:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.chdir(work)
            os.dup2(in_fd, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.dup2(st_w, 3)
            os.closerange(4, 1 << 16)
            os.umask(0o077)
            timeout = float(req.get("timeout", 5.0))  # type: ignore[arg-type]
            cpu = int(timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            fsize = int(req.get("fsize_mb", 16)) << 20  # type: ignore[call-overload]
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            nofile = int(req.get("nofile", 256))  # type: ignore[call-overload]
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            mem = int(req.get("mem_mb", 512)) << 20  # type: ignore[call-overload]
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            # the rest of the clean environment was set once in the driver (see _clean_env):
            # clearing os.environ here costs ~250 copy-on-write page faults per program
            os.environ["HOME"] = work
            os.environ["TMPDIR"] = work
            atexit._clear()
            sys.stdin, sys.stdout, sys.stderr = self._streams
            sys.argv = ["main.py"]
            sys.path[0:1] = [work]
            src = str(req.get("src", ""))
            filename = work + "/main.py"
            glb: dict[str, object] = {"__name__": "__main__", "__builtins__": __builtins__}
            try:
                if isinstance(code_or_exc, BaseException):
                    raise code_or_exc
                if code_or_exc is None:
                    code_or_exc = compile(src, filename, "exec", dont_inherit=True)
                exec(code_or_exc, glb)
                code = 0
            except SystemExit as exc:
                c = exc.code
                if c is None:
                    code = 0
                elif isinstance(c, int):
                    code = c & 0xFF
                else:
                    print(c, file=sys.stderr)
                    code = 1
            except MemoryError:
                os.write(3, b"M")
                code = 1
                _print_exc(src, filename)
            except BaseException:
                code = 1
                _print_exc(src, filename)
            threading = sys.modules.get("threading")
            if threading is not None:
                with contextlib.suppress(BaseException):  # like python: join non-daemon threads
                    threading._shutdown()
            with contextlib.suppress(BaseException):
                atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
        except MemoryError:
            with contextlib.suppress(BaseException):
                os.write(3, b"M")
        except BaseException:
            pass
        finally:
            os._exit(code)

    # ---- main loop ------------------------------------------------------------------------
    def serve(self) -> int:
        _emit(
            {
                "ready": True,
                "protocol": PROTOCOL,
                "pid": os.getpid(),
                "uid": os.geteuid(),
                "python": sys.version.split()[0],
                "mode": self.mode,
            }
        )
        while True:
            line = _read_line()
            if line is None:
                return 0
            if not line.strip():
                continue
            try:
                req = json.loads(line)
            except ValueError as exc:
                _emit({"id": None, "spawn_error": f"bad request line: {exc}"})
                continue
            if req.get("op") == "exit":
                return 0
            try:
                res = self.run(req)
            except Exception as exc:  # a driver fault must cost one typed result, not the worker
                self._kill_everything()
                self._wipe(os.path.join(self.base, f"run{self.seq}"))
                res = {
                    "id": req.get("id"),
                    "spawn_error": f"driver error: {exc}",
                    "anomaly": f"driver error: {exc}",
                }
            # hold while ≥ 4 more requests are queued: flushing before the queue runs dry
            # lets the host refill it while the last queued programs still run
            _emit(res, hold=_INBUF.count(b"\n") >= 4)


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "container"
    if len(argv) > 1:  # optional comma list overriding the preloaded modules
        global _PRELOAD
        _PRELOAD = [m for m in argv[1].split(",") if m]
    _preload()
    gc.collect()
    gc.freeze()
    return Driver(mode).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
