"""In-sandbox driver: runs untrusted programs one at a time, each in a fresh fork.

Standard library only: this file is shipped verbatim into the container
(``python3 -I -c <this source> container``) and also run on the host by
:class:`sandbox.local.LocalSandbox` (``python -I driver.py local``).

Two processes, because on this kind of VM a page fault costs ~4 µs and a
fork costs ~55 µs per MiB of the parent's anonymous memory (fork and exit
together, see docs/sandbox.md):

* **Controller** (role ``container``/``local``; PID 1 in a container). Speaks
  the protocol (JSON lines on fd 0/1), compiles each program, creates its
  pipes and working directory, reads its output, wipes ``/tmp`` afterwards.
  It never forks a program, so its memory is never write-protected by a fork
  and its per-program work costs no copy-on-write faults.
* **Zygote** (role ``zygote``; a fresh interpreter the controller spawns). A
  small Python that has imported the modules programs use and then only
  forks: it receives one program (marshalled code object + pipe fds over a
  ``SOCK_SEQPACKET`` socket), forks the child, waits for it with the
  deadline, kills everything the program left behind and reports the exit
  status. Its heap is small and it writes almost nothing between forks, so
  fork, exit and copy-on-write stay cheap.

Isolation properties:

* **Nothing survives a program.** After each program the zygote kills every
  process except PID 1 and itself (``kill(-1, SIGKILL)`` in a container, whose
  only processes are the controller, the zygote and the program's; a
  descendant-tree kill in local mode, where the zygote is a child subreaper so
  double-forked daemons come back to it). The controller then wipes ``/tmp``,
  ``/dev/shm`` and ``/dev/mqueue``. The next child is a fresh fork (fresh env,
  cwd, modules, working directory), so no state passes between programs.
* **A program cannot take the driver down.** The controller is the container's
  init, which ignores signals it has no handler for. The zygote *can* be
  killed or stopped by a program (same uid); then the controller takes over:
  it adopts the orphaned program (init/subreaper), waits for it or its
  deadline, kills everything, and spawns a new zygote — the program still gets
  its own correct result.
* **Unforgeable results.** Both processes are ``PR_SET_DUMPABLE=0``, so
  ``/proc/<pid>/fd`` and ``/mem`` of the driver cannot be opened by programs;
  children close every inherited descriptor. The zygote's stdin/stdout are
  ``/dev/null``: only the controller holds the protocol stream.

* **Positive proof of completion.** Exit status 0 is not a pass: a program can
  reach it by leaving early (``sys.exit(0)``, ``os._exit``, ``exec``, a forked
  parent). For every program the controller draws a random token and hands it to
  the child through a pipe the child drains *before* any program code runs; the
  token then lives only in the closure of an audit hook (:func:`_arm_proof`). The
  hook writes it to the proof pipe when — and only when — the driver frame that
  ran the program announces that the program's code returned normally, in the
  original process. Events that could read the hook's memory or bend control
  flow (gc walks, ctypes, trace/profile hooks, ``/proc/*/mem``) zero the token
  first. ``proof`` in the result says whether the token came back.

Request: ``{"id", "src", "stdin", "timeout", "mem_mb", "cap", "fsize_mb", "nofile"}``.
Result: ``{"id", "rc", "sig", "timed_out", "memerr", "oomkill", "stopped",
"out", "err", "trunc", "dur", "cpu", "faults", "drv_cpu", "zyg_cpu",
"spawn_error", "anomaly", "proof", "tamper"}``.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import marshal
import os
import resource
import stat
import sys
import time
from typing import Any

PROTOCOL = 1
_PRECOMPILE_MAX = 256 * 1024
#: programs (marshalled) up to this size travel inside the zygote message; larger ones
#: through a file descriptor (a SEQPACKET message must fit the socket buffer)
_INLINE_MAX = 60000
NOBODY = 65534
_READ = 65536
#: bytes of the proof pipe kept (a program may write junk there; it only loses its own proof)
_PROOF_CAP = 4096
_CONTAINER_WIPE = ("/tmp", "/dev/shm", "/dev/mqueue")
# Modules HumanEval-style programs import most (typing: 13 %, math: 4 %, …) plus what a
# failing program needs for its traceback. They are imported by the zygote only; each
# one makes every fork a little dearer, so the list is deliberately short.
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

# The C module behind ``signal``: plain ints, no enum conversions (each conversion
# costs a forked child copy-on-write faults). Looked up, not imported by name, because
# typeshed ships no stub for it; ``signal`` below guarantees it is loaded.
import signal  # noqa: E402

_csignal: Any = sys.modules["_signal"]
_SIGCHLD = int(signal.SIGCHLD)
_CHLD = (_SIGCHLD,)
_SIGKILL = int(signal.SIGKILL)
_SIGSTOP = int(signal.SIGSTOP)


# ---- helpers shared by both roles ---------------------------------------------------------
def _preload() -> None:
    """Import the modules HumanEval-style programs use, so children start warm."""
    for name in _PRELOAD:
        with contextlib.suppress(Exception):  # a minimal image may lack one; not fatal
            __import__(name)


def _prctl(option: int, arg: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except Exception:
        pass


def _malloc_trim() -> None:
    """Give freed heap pages back to the kernel (``malloc_trim``).

    Compiling this driver's source and importing modules leaves megabytes of freed but
    still-resident heap behind; every fork would copy their page-table entries and
    every exit tear them down again (~55 µs per MiB on this kind of VM).
    """
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except Exception:
        pass


#: x86_64 numbers of the system calls programs never need and that widen the kernel's
#: attack surface (io_uring, BPF, perf, namespaces and mounts, keyrings, other processes'
#: memory, kernel modules, …). Denied with EPERM by our filter, stacked on top of the
#: engine's default seccomp profile (filters stack; the strictest answer wins).
_DENIED_SYSCALLS_X86_64 = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "personality": 135, "ustat": 136,
    "sysfs": 139, "vhangup": 153, "modify_ldt": 154, "pivot_root": 155, "chroot": 161,
    "acct": 163, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168,
    "reboot": 169, "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176,
    "quotactl": 179, "io_setup": 206, "lookup_dcookie": 212, "mbind": 237,
    "set_mempolicy": 238, "get_mempolicy": 239, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272,
    "move_pages": 279, "perf_event_open": 298, "fanotify_init": 300,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438,
    "process_madvise": 440, "mount_setattr": 442, "landlock_create_ruleset": 444,
    "landlock_add_rule": 445, "landlock_restrict_self": 446, "memfd_secret": 447,
}  # fmt: skip
_SYS_SOCKET_X86_64 = 41
_AF_VSOCK = 40


def _seccomp_program() -> list[tuple[int, int, int, int]]:
    """Classic BPF: other arch → allow; x32 ABI → deny; listed calls → EPERM;
    ``socket(AF_VSOCK, …)`` → EAFNOSUPPORT; everything else → allow."""
    ld_abs, jeq, jge = 0x20, 0x15, 0x35
    ret = 0x06
    allow, errno = 0x7FFF0000, 0x00050000
    denied = sorted(_DENIED_SYSCALLS_X86_64.values())
    n = len(denied)
    at_allow, at_deny, at_vsock = 7 + n, 8 + n, 9 + n
    prog = [(ld_abs, 0, 0, 4), (jeq, 0, at_allow - 2, 0xC000003E), (ld_abs, 0, 0, 0)]
    prog.append((jge, at_deny - 4, 0, 0x40000000))
    for i, nr in enumerate(denied):
        prog.append((jeq, at_deny - (5 + i), 0, nr))
    prog.append((jeq, 0, at_allow - (5 + n), _SYS_SOCKET_X86_64))
    prog.append((ld_abs, 0, 0, 16))  # args[0], low 32 bits
    prog.append((jeq, at_vsock - (7 + n), 0, _AF_VSOCK))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, errno | 1), (ret, 0, 0, errno | 97)]
    return prog


def _install_seccomp() -> bool:
    """Stack our filter on the current one (inherited by every program); False if not."""
    if os.uname().machine != "x86_64":
        return False
    try:
        import ctypes
        import struct

        prog = _seccomp_program()
        raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
        buf = ctypes.create_string_buffer(raw, len(raw))

        class _Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = _Fprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: required to filter unprivileged
        return libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER
    except Exception:
        return False


def _set_nondumpable() -> None:
    """PR_SET_DUMPABLE=0: /proc/<pid>/fd and /mem become root-owned, unopenable by programs."""
    _prctl(4, 0)


def _set_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: orphans come back to us, so we can kill and reap them."""
    _prctl(36, 1)


def _reap_all() -> list[tuple[int, int]]:
    """Reap every exited child without blocking; (pid, status) pairs."""
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, status))


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
    """All descendants of ``root`` (local-mode cleanup; orphans come back to a subreaper)."""
    out: list[int] = []
    frontier = [root]
    seen = {root}
    while frontier:
        kids = [c for c in _direct_children(frontier.pop()) if c not in seen]
        seen.update(kids)
        out.extend(kids)
        frontier.extend(kids)
    return out


def _kill_everything(container: bool) -> bool:
    """Kill every process except the caller (and PID 1); True when none is left.

    In a container ``kill(-1, SIGKILL)`` atomically signals every process the caller
    may signal except itself and the namespace init. In local mode the caller's
    descendant tree is stopped, then killed.
    Zombies are reaped as they appear; gives up after 3 s.
    """
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if container:
            try:
                os.kill(-1, _SIGKILL)
            except ProcessLookupError:
                _reap_all()
                return True
        else:
            pids = _proc_children_tree(os.getpid())
            if not pids:
                _reap_all()
                return True
            for sig in (_SIGSTOP, _SIGKILL):
                for p in pids:
                    with contextlib.suppress(OSError):
                        os.kill(p, sig)
        _reap_all()
        time.sleep(0.0005)
    return False


# ---- zygote ---------------------------------------------------------------------------------
def _print_exc(src: str, filename: str) -> None:
    """Print the traceback as ``python main.py`` would: program frames only, with source lines.

    Frames before the program's own (the zygote's ``exec`` call) are dropped; a compile
    error has no program frames at all, like a SyntaxError from python.
    """
    try:
        import linecache
        import traceback

        if src:
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


def _std_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """Text streams over fds 0/1/2, built once before forking and never used by the zygote.

    A child replaces fds 0-2 with its own pipes, so these buffers stay empty until the
    program uses them; building them per child would cost copy-on-write faults.
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


#: audit events after which a program's completion can no longer be proven: each one can
#: read the driver's memory (gc walks, ctypes, process-memory files) or redirect control flow
#: (trace and profile hooks can jump lines), so the proof token is destroyed on the spot
_TAINT_EVENTS = frozenset(
    {
        "sys.settrace",
        "sys.setprofile",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys._current_frames",
        "cpython.PyInterpreterState_New",
        "cpython._PySys_ClearAuditHooks",
    }
)
_TAINT_PREFIXES = ("ctypes.", "sys.monitoring", "_xxsubinterpreters", "_interpreters")
_TAINT_MODULES = frozenset({"_testcapi", "_testinternalcapi", "_testmultiphase"})
_PROOF_EVENT = "gate_harness.proof"
_TOKEN_LEN = 16


def _arm_proof(token_fd: int, proof_fd: int) -> bool:
    """Install the audit hook that alone holds this run's completion token.

    The token (random bytes from the controller, read straight from a pipe into one
    bytearray) lives only in this hook's closure: not in the program text, argv, the
    environment, any module, or the frame that runs the program. The hook writes it to
    ``proof_fd`` once, when the driver frame that armed it announces ``_PROOF_EVENT``
    after the program's code returned normally, in the original process. Every event
    that could read the closure or bend control flow zeroes it first (``_TAINT_*``), and
    everything the hook calls is bound here, so a program that monkeypatches ``os`` or
    ``builtins`` cannot intercept it. See docs/sandbox.md for what stays out of reach.
    """
    buf = bytearray(_TOKEN_LEN)
    got = os.readv(token_fd, [buf])
    os.close(token_fd)
    site = sys._getframe(1)
    pid = os.getpid()
    zero = bytes(_TOKEN_LEN)
    live = [got == _TOKEN_LEN]
    write, getpid, getframe, readlink = os.write, os.getpid, sys._getframe, os.readlink
    str_t, bytes_t, type_ = str, bytes, type
    taint_events, taint_prefixes, taint_modules = _TAINT_EVENTS, _TAINT_PREFIXES, _TAINT_MODULES

    def burn() -> None:
        buf[:] = zero
        if live[0]:
            live[0] = False
            try:  # noqa: SIM105 - no global lookups here: a program may patch contextlib
                write(3, b"X")  # tell the controller why no proof will come
            except BaseException:
                pass

    def names_mem(path: Any) -> bool:
        kind = type_(path)
        if kind is int:
            return False
        if kind is bytes_t:
            path = path.decode("utf-8", "surrogateescape")
        elif kind is not str_t:
            return True  # a PathLike could answer differently the second time: refuse
        for _hop in range(8):
            if path.rstrip("/").rsplit("/", 1)[-1] in ("mem", "pagemap"):
                return True
            try:
                target = readlink(path)
            except BaseException:
                return False
            if not target.startswith("/") and "/" in path:
                target = path.rsplit("/", 1)[0] + "/" + target
            path = target
        return True

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == _PROOF_EVENT:
            if live[0] and getframe(1) is site and getpid() == pid:
                live[0] = False
                write(proof_fd, buf)
            buf[:] = zero
        elif (
            event in taint_events
            or event.startswith(taint_prefixes)
            or (event == "import" and args and args[0] in taint_modules)
            or (event == "open" and args and names_mem(args[0]))
        ):
            burn()

    sys.addaudithook(hook)
    return live[0]


class Zygote:
    """Forks one child per program from a small, quiet heap (see the module docstring)."""

    def __init__(self, mode: str, drop_to_nobody: bool) -> None:
        import _socket

        if mode == "container" and (os.getpid() == 1 or os.getppid() != 1):
            # kill(-1) from here must only ever reach the container's processes
            raise SystemExit("driver zygote: container mode requires the controller as PID 1")
        if not stat.S_ISSOCK(os.fstat(3).st_mode):
            raise SystemExit("driver zygote: fd 3 must be the controller's socket")
        self.container = mode == "container"
        self.drop_to_nobody = drop_to_nobody
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, 3)
        self.cmsg_space = _socket.CMSG_SPACE(8 * 4)
        self.scm = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)
        self.truncated = _socket.MSG_TRUNC | _socket.MSG_CTRUNC
        # The kernel OOM killer must pick programs (which inherit this), never the
        # controller; if it picks the zygote itself, the controller replaces it. Written
        # *before* PR_SET_DUMPABLE=0, which makes /proc/self root-owned and the write fail.
        try:
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
        except OSError:
            pass
        _set_nondumpable()
        _set_subreaper()
        self.seccomp = _install_seccomp()
        _csignal.pthread_sigmask(_csignal.SIG_BLOCK, _CHLD)  # for sigtimedwait
        # what every program starts with, set up once here instead of in each child:
        # the environment (HOME/TMPDIR = the working directory, passed by the controller),
        # argv, the script directory first on sys.path, fresh std streams
        sys.argv = ["main.py"]
        sys.path.insert(0, os.environ.get("HOME", "/tmp"))
        sys.stdin, sys.stdout, sys.stderr = _std_streams()

    def serve(self) -> int:
        self.sock.send(b"ready")
        while True:
            try:
                msg, anc, flags, _addr = self.sock.recvmsg(65536, self.cmsg_space)
            except InterruptedError:
                continue
            except OSError:
                return 0
            if not msg or flags & self.truncated:
                return 0  # controller gone, or a message we cannot trust: let it start afresh
            fds: list[int] = []
            for level, kind, data in anc:
                if (level, kind) == self.scm:
                    fds.extend(memoryview(data[: len(data) - len(data) % 4]).cast("i").tolist())
            reply = self.run(marshal.loads(msg), fds)
            self.sock.send(marshal.dumps(reply))

    def run(self, hdr: tuple[Any, ...], fds: list[int]) -> tuple[Any, ...]:
        timeout = hdr[2]
        c0 = time.process_time()
        t0 = time.monotonic()
        pid = -1
        err = ""
        for attempt in range(50):
            try:
                pid = os.fork()
                break
            except OSError as exc:  # EAGAIN under the pids limit: clean and retry
                err = f"fork failed: {exc}"
                _kill_everything(self.container)
                time.sleep(0.002 * (attempt + 1))
        if pid == 0:
            self.child(hdr, fds)  # never returns
        status: int | None = None
        ru: Any = None
        timed_out = stopped = False
        if pid > 0:
            # Block at once: until the child exits, every page this process writes is
            # copied (the child still shares it), so nothing else happens before the wait.
            _csignal.sigtimedwait(_CHLD, timeout)
            deadline = t0 + timeout
            while True:
                try:
                    wpid, st, ru = os.wait4(pid, os.WNOHANG | os.WUNTRACED)
                except ChildProcessError:  # cannot happen (nothing else reaps it); be safe
                    break
                if wpid == pid:
                    if os.WIFSTOPPED(st):
                        stopped = True
                    else:
                        status = st
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                _csignal.sigtimedwait(_CHLD, remaining)  # an orphan's exit woke us
        for fd in fds:
            os.close(fd)
        if pid < 0:
            return (None, 0.0, 0, 0.0, False, False, True, time.process_time() - c0, err)
        dur = time.monotonic() - t0
        if status is None:  # timed out or stopped: kill the whole program first
            if self.container:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(-1, _SIGKILL)
            else:
                for p in [pid, *_proc_children_tree(pid)]:
                    with contextlib.suppress(OSError):
                        os.kill(p, _SIGKILL)
            try:
                _, status, ru = os.wait4(pid, 0)
            except ChildProcessError:
                status = None
        clean = _kill_everything(self.container)
        _csignal.sigtimedwait(_CHLD, 0)  # drop SIGCHLDs of the cleanup: the next wait blocks
        cpu = ru.ru_utime + ru.ru_stime if ru is not None else 0.0
        faults = ru.ru_minflt if ru is not None else 0
        return (status, cpu, faults, dur, timed_out, stopped, clean, time.process_time() - c0, "")

    def child(self, hdr: tuple[Any, ...], fds: list[int]) -> None:
        """Become the program: new session, dropped fds, rlimits, clean env, then exec it.

        Runs in the forked child and never returns. Every object it touches costs a
        copy-on-write page fault, so it does as little Python work as possible.
        """
        code = 1
        src = ""
        filename = ""
        try:
            _seq, work, timeout, mem_mb, fsize_mb, nofile, kind, payload = hdr
            filename = work + "/main.py"
            os.setsid()
            _csignal.pthread_sigmask(_csignal.SIG_SETMASK, ())
            if self.drop_to_nobody:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.chdir(work)
            os.dup2(fds[0], 0)
            os.dup2(fds[1], 1)
            os.dup2(fds[2], 2)
            os.dup2(fds[3], 3)
            if payload is None:  # large program: read it from the extra descriptor
                chunks = []
                while chunk := os.read(fds[6], 1 << 20):
                    chunks.append(chunk)
                payload = b"".join(chunks)
            armed = _arm_proof(fds[4], 4)  # drains and closes the token pipe
            os.dup2(fds[5], 4)  # proof pipe: only the armed audit hook writes the token here
            os.closerange(5, 1 << 16)
            os.write(3, b"P%d\n" % os.getpid())  # lets the controller adopt us if needed
            os.umask(0o077)
            cpu = int(timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
            atexit._clear()
            glb: dict[str, object] = {"__name__": "__main__", "__builtins__": __builtins__}
            announce, event = sys.audit, _PROOF_EVENT
            try:
                if kind == "C":
                    program = marshal.loads(payload)
                else:  # compile error or too large to precompile: compile here, as python would
                    src = payload.decode("utf-8", "surrogateescape")
                    program = compile(src, filename, "exec", dont_inherit=True)
                exec(program, glb)
                code = 0
                if armed:  # the program's code ran to its end: the only place proof is given
                    announce(event)
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


def _zygote_main(argv: list[str]) -> int:
    """``zygote <mode> <drop 0|1> <preload list>``: spawned by the controller only."""
    global _PRELOAD
    if len(argv) > 3:
        _PRELOAD = [m for m in argv[3].split(",") if m]
    mode = argv[1] if len(argv) > 1 else "container"
    zygote = Zygote(mode, drop_to_nobody=len(argv) > 2 and argv[2] == "1")
    _preload()
    gc.collect()
    gc.freeze()
    _malloc_trim()
    return zygote.serve()


# ==== controller: everything below runs only in the controller ==================================
# The zygote is spawned with the source above this line only (see Controller._zygote_argv):
# compiled code is resident memory, and every MiB of it makes each fork and exit dearer.


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _oom_counter_fd() -> int:
    """Descriptor of our memory cgroup's OOM-event file (v1 or v2), or -1."""
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        if _oom_kills(fd) >= 0:
            return fd
        os.close(fd)
    return -1


def _oom_kills(fd: int) -> int:
    """Kernel OOM-kill counter read afresh from ``fd`` (``pread`` at 0), or -1."""
    if fd < 0:
        return -1
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return -1
    i = data.find(b"oom_kill ")
    if i < 0:
        return -1
    return int(data[i + 9 :].split(b"\n", 1)[0])


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    """Open a directory without following symlinks; repair a hostile ``chmod 0`` first."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _empty_dir(fd: int) -> tuple[str | None, bool]:
    """Unlink every non-directory entry of ``fd``; return (first subdirectory, ok).

    Streams the entries (``scandir`` on a descriptor reads them in batches), so a
    directory of millions of hard links costs no memory to empty.
    """
    ok = True
    with os.scandir(fd) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                try:  # the common case: an empty directory goes at once
                    os.rmdir(entry.name, dir_fd=fd)
                    continue
                except OSError:
                    return entry.name, ok
            try:
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
    return None, ok


def _wipe_dir(path: str) -> bool:
    """Remove everything below ``path`` (keeping ``path``) and prove it is empty.

    Iterative and descriptor-relative: it walks down with ``openat`` and back up
    with ``..``, holding one directory descriptor and a stack of names, so neither
    a chain of thousands of nested directories (no recursion limit) nor paths longer
    than ``PATH_MAX`` (no path is ever built) can make it fail. It runs after every
    process of the program is dead, so nothing moves directories under it. Returns
    False unless ``path`` is verifiably empty afterwards: the caller then retires the
    worker instead of handing the next program a dirty slate.
    """
    try:
        fd = _open_dir(path, None)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    names: list[str] = []
    ok = True
    budget = 1 << 22  # steps; a bound so a pathological tree cannot hang the driver
    try:
        while budget > 0:
            budget -= 1
            try:
                sub, emptied = _empty_dir(fd)
            except OSError:
                return False
            ok = ok and emptied
            if sub is not None:
                child = _open_dir(sub, fd)
                os.close(fd)
                fd = child
                names.append(sub)
                with contextlib.suppress(OSError):  # a read-only directory keeps its entries
                    os.fchmod(fd, 0o700)
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(names.pop(), dir_fd=fd)
            except OSError:
                return False  # would loop on the same child: give up, retire the worker
        with os.scandir(fd) as it:
            return ok and budget > 0 and next(it, None) is None
    except OSError:
        return False
    finally:
        os.close(fd)


def _clean_env(work: str) -> None:
    """The environment every program starts from (``work``: its working directory)."""
    os.environ.clear()
    os.environ.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        HOME=work,
        TMPDIR=work,
        LANG="C.UTF-8",
        PYTHONIOENCODING="utf-8",
    )


# ---- controller: protocol ---------------------------------------------------------------
_INBUF = bytearray()
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
    import json

    if not _OUTBUF:
        _OUT_SINCE[0] = time.monotonic()
    _OUTBUF.extend((json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii"))
    if not hold or len(_OUTBUF) > _FLUSH_BYTES or time.monotonic() - _OUT_SINCE[0] > _FLUSH_AFTER_S:
        _flush()


def _read_line() -> bytes | None:
    """Read one request line from fd 0 with our own buffer."""
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


#: where the zygote's part of this file ends (built by concatenation so that this
#: definition itself does not match)
_CONTROLLER_MARKER = "\n# ==== " + "controller: "


def _own_source() -> str:
    """This driver's source: the ``-c`` argument in a container, the file in local mode."""
    if sys.argv and sys.argv[0] == "-c":
        return sys.orig_argv[sys.orig_argv.index("-c") + 1]
    with open(sys.argv[0], encoding="utf-8") as fh:
        return fh.read()


def _compile(src: str, filename: str) -> tuple[str, bytes]:
    """Compile small sources here (never forked, so compiling costs no COW faults).

    Returns ``("C", marshalled code)``, or ``("S", source)`` when the child must
    compile itself: on a compile error (it then raises it exactly as ``python
    main.py`` would) and for sources above ``_PRECOMPILE_MAX``, which are compiled
    under the child's rlimits so a pathological source cannot exhaust the driver.
    ``dont_inherit`` keeps the driver's own ``__future__`` flags out of programs.
    """
    if len(src) <= _PRECOMPILE_MAX:
        try:
            return "C", marshal.dumps(compile(src, filename, "exec", dont_inherit=True))
        except BaseException:  # SyntaxError, RecursionError, MemoryError, …
            pass
    return "S", src.encode("utf-8", "surrogateescape")


#: the controller ignores these; the zygote (and so every program) must start with defaults
_DEFAULT_SIGNALS = tuple(
    int(s)
    for s in (
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGCHLD,
    )
)


class Controller:
    """Protocol, compilation, pipes and cleanup; the zygote only forks (see module doc)."""

    def __init__(self, mode: str) -> None:
        import select
        import socket

        if mode not in ("container", "local"):
            raise SystemExit(f"driver: unknown mode {mode!r}; use 'container' or 'local'")
        if mode == "container" and os.getpid() != 1:
            # kill(-1) is only safe as a namespace init; refuse rather than kill the host.
            raise SystemExit("driver: container mode requires PID 1 (run as the container command)")
        self._select = select
        self._socket = socket
        self.mode = mode
        self.container = mode == "container"
        self.seq = 0
        self.drop_to_nobody = mode == "local" and os.geteuid() == 0
        if mode == "local":
            root = os.environ.get("GATE_HARNESS_SANDBOX_TMP") or "/tmp"
            self.base = os.path.realpath(os.path.join(root, f"gate-harness-driver-{os.getpid()}"))
            os.makedirs(self.base, mode=0o711, exist_ok=True)
            os.chmod(self.base, 0o711)
        else:
            self.base = "/tmp"
        sock_path = os.environ.get("GATE_HARNESS_SOCKET")
        if sock_path:  # the host listens there: speak the protocol over it instead of fd 0/1
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(sock_path)
            os.dup2(conn.fileno(), 0)
            os.dup2(conn.fileno(), 1)
            conn.close()
        self.work = os.path.join(self.base, "w")
        _clean_env(self.work)
        self._zygote_argv = self._zygote_command()
        self.zpid = 0
        self.zsock: Any = None
        self.dirty = False  # a program was handed to the zygote and not yet answered
        self._adopted: dict[int, int] = {}
        self.zygote_starts = 0
        # start the zygote first: its interpreter start-up overlaps with ours
        self._spawn_zygote(wait=False)
        _set_subreaper()  # local mode: orphans of a killed zygote come back to us
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        _set_nondumpable()
        self.oom_fd = _oom_counter_fd() if self.container else -1
        self.devnull = os.open(os.devnull, os.O_RDONLY)  # stdin of programs without input

    # ---- zygote lifecycle -----------------------------------------------------------------
    def _zygote_command(self) -> list[str]:
        """``python -I -c <zygote part of this driver> zygote <mode> <drop> <preload>``.

        The zygote gets only the source above the controller marker: compiled code is
        resident memory the zygote would carry into every fork.
        """
        src = _own_source()
        cut = src.find(_CONTROLLER_MARKER)
        if cut < 0:
            raise RuntimeError("driver source has no controller marker; cannot spawn zygote")
        zsrc = src[:cut] + "\n\nsys.exit(_zygote_main(sys.argv[1:]))\n"
        mode = "container" if self.container else "local"
        drop = "1" if self.drop_to_nobody else "0"
        return [sys.executable, "-I", "-c", zsrc, "zygote", mode, drop, ",".join(_PRELOAD)]

    def _spawn_zygote(self, *, wait: bool = True) -> None:
        mine, theirs = self._socket.socketpair(self._socket.AF_UNIX, self._socket.SOCK_SEQPACKET)
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            self.zpid = os.posix_spawn(
                sys.executable,
                self._zygote_argv,
                dict(os.environ),
                setsigdef=_DEFAULT_SIGNALS,
                setsigmask=(),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, devnull, 1),
                    (os.POSIX_SPAWN_DUP2, theirs.fileno(), 3),
                ],
            )
        finally:
            os.close(devnull)
            theirs.close()
        self.zsock = mine
        self.zygote_starts += 1
        if wait:
            self._await_zygote()

    def _await_zygote(self) -> None:
        """Block until the zygote has imported everything and says ``ready``."""
        mine = self.zsock
        mine.settimeout(60)
        try:
            hello = mine.recv(64)
        except OSError as exc:
            raise RuntimeError(f"zygote did not start: {exc}") from exc
        if hello != b"ready":
            raise RuntimeError(f"zygote did not start (sent {hello!r})")
        mine.settimeout(None)

    def _replace_zygote(self) -> None:
        """Kill the zygote and everything else (never the controller), reap, spawn anew."""
        with contextlib.suppress(OSError):
            os.kill(self.zpid, _SIGKILL)
        _kill_everything(self.container)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.zpid, 0)
        with contextlib.suppress(OSError):
            self.zsock.close()
        self._spawn_zygote()

    def _zygote_gone(self) -> bool:
        """Reap children after SIGCHLD; True when the zygote died or stopped."""
        gone = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:
                return gone
            if pid == 0:
                return gone
            if pid == self.zpid:
                gone = True
            else:
                self._adopted[pid] = status

    # ---- one program ----------------------------------------------------------------------
    def run(self, req: dict[str, object]) -> dict[str, object]:
        self.seq += 1
        self._adopted = {}
        pid_tag = str(req.get("id", self.seq))
        timeout = float(req.get("timeout", 5.0))  # type: ignore[arg-type]
        cap = int(req.get("cap", 65536))  # type: ignore[call-overload]
        mem_mb = int(req.get("mem_mb", 512))  # type: ignore[call-overload]
        fsize_mb = int(req.get("fsize_mb", 16))  # type: ignore[call-overload]
        nofile = int(req.get("nofile", 256))  # type: ignore[call-overload]
        if not (timeout > 0 and mem_mb > 0 and fsize_mb >= 0 and nofile > 0):
            raise ValueError(f"bad limits {timeout=} {mem_mb=} {fsize_mb=} {nofile=}")
        # Always the same path, created afresh for every program: in a container all of
        # /tmp is wiped after each program, in local mode the directory itself is removed.
        # A constant path lets the zygote set HOME/TMPDIR/sys.path once for every child.
        work = self.work
        c0 = time.process_time()
        try:
            os.mkdir(work, 0o700)
        except FileExistsError:  # only after a failed wipe (which also recycled the worker)
            self._wipe(work)
            os.mkdir(work, 0o700)
        if self.drop_to_nobody:
            os.chown(work, NOBODY, NOBODY)
        kind, payload = _compile(str(req.get("src", "")), work + "/main.py")
        stdin_data = str(req.get("stdin", "")).encode("utf-8", "surrogateescape")
        fds = [self._file_fd(work, ".stdin", stdin_data) if stdin_data else os.dup(self.devnull)]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        # the completion proof: a fresh random token goes to the child through a pipe it
        # drains before any program code runs, and comes back on its own pipe (see _arm_proof)
        token = os.urandom(_TOKEN_LEN)
        tok_r, tok_w = os.pipe()
        os.write(tok_w, token)
        os.close(tok_w)
        pf_r, pf_w = os.pipe()
        fds += [out_w, err_w, st_w, tok_r, pf_w]
        inline: bytes | None = payload
        if len(payload) > _INLINE_MAX:
            fds.append(self._file_fd(work, ".main", payload))
            inline = None
        hdr = marshal.dumps((self.seq, work, timeout, mem_mb, fsize_mb, nofile, kind, inline))
        oom0 = _oom_kills(self.oom_fd)
        t0 = time.monotonic()
        self.dirty = True
        try:
            self._socket.send_fds(self.zsock, [hdr], fds)
            sent = True
        except OSError:
            sent = False
        for fd in fds:
            os.close(fd)
        bufs = {out_r: bytearray(), err_r: bytearray()}
        totals = {out_r: 0, err_r: 0}
        status_bytes = bytearray()
        reply: tuple[Any, ...] | None = None
        lost = not sent
        poller = self._select.poll()
        for fd in (out_r, err_r, st_r, pf_r):
            os.set_blocking(fd, False)
            poller.register(fd, self._select.POLLIN)
        poller.register(self.zsock.fileno(), self._select.POLLIN)
        poller.register(self.wake_r, self._select.POLLIN)
        open_fds = {out_r, err_r, st_r, pf_r}
        proof_bytes = bytearray()

        def pump(fd: int, drain: bool = False) -> None:
            """Read what ``fd`` has: once per poll event, or until empty when ``drain``."""
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
                    if len(status_bytes) < 64:
                        status_bytes.extend(chunk[:64])
                elif fd == pf_r:
                    if len(proof_bytes) < _PROOF_CAP:
                        proof_bytes.extend(chunk[:_PROOF_CAP])
                else:
                    totals[fd] += len(chunk)
                    room = cap - len(bufs[fd])
                    if room > 0:
                        bufs[fd].extend(chunk[:room])
                if not drain:
                    return

        # the zygote enforces the deadline; this backstop only catches a hung zygote
        backstop = t0 + timeout + 5.0
        while not lost and (reply is None or out_r in open_fds or err_r in open_fds):
            remaining = backstop - time.monotonic()
            if remaining <= 0:
                lost = reply is None  # answered but output still open: stop waiting for EOF
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
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                    if self._zygote_gone() and reply is None:
                        lost = True
                elif fd == self.zsock.fileno():
                    try:
                        msg = self.zsock.recv(4096)
                    except OSError:
                        msg = b""
                    if not msg:
                        lost = True
                        break
                    reply = marshal.loads(msg)
                    poller.unregister(fd)
                elif fd in open_fds:
                    pump(fd)
        takeover = ""
        if lost:
            reply, takeover = self._take_over(st_r, status_bytes, pump, open_fds, t0, timeout)
        for fd in list(open_fds):
            pump(fd, True)
        for fd in (out_r, err_r, st_r, pf_r):
            os.close(fd)
        self.dirty = False
        assert reply is not None
        wstatus, cpu, faults, dur, timed_out, stopped, clean, zyg_cpu, spawn_error = reply
        wiped = self._wipe(work)
        oom1 = _oom_kills(self.oom_fd)
        res: dict[str, object] = {"id": pid_tag}
        if spawn_error:
            res.update(spawn_error=spawn_error, dur=0.0)
            return res
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
            memerr=b"M" in status_bytes.partition(b"\n")[2],
            proof=token in proof_bytes,
            tamper=b"X" in status_bytes.partition(b"\n")[2],
            oomkill=oom0 >= 0 and oom1 > oom0 and not timed_out and sig == _SIGKILL,
            out=out_b.decode("utf-8", "replace"),
            err=err_b.decode("utf-8", "replace"),
            trunc=totals[out_r] > cap or totals[err_r] > cap,
            dur=dur,
            cpu=cpu,
            faults=faults,
            drv_cpu=time.process_time() - c0,
            zyg_cpu=zyg_cpu,
            anomaly="; ".join(anomaly),
        )
        if takeover:
            res["note"] = takeover
        return res

    def _take_over(
        self,
        st_r: int,
        status_bytes: bytearray,
        pump: Any,
        open_fds: set[int],
        t0: float,
        timeout: float,
    ) -> tuple[tuple[Any, ...], str]:
        """The zygote is gone mid-program: finish the program ourselves, then replace it.

        A killed zygote's children are re-parented to us (init, or subreaper in local
        mode), so the program keeps running and we wait for it — up to its own deadline
        — using the pid its child wrote before any program code ran.
        """
        with contextlib.suppress(OSError):
            os.kill(self.zpid, _SIGKILL)  # stopped or hung: make it let go of the program
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.zpid, 0)
        if st_r in open_fds:
            pump(st_r, True)
        head = bytes(status_bytes).partition(b"\n")[0]
        prog = int(head[1:]) if head[:1] == b"P" and head[1:].isdigit() else 0
        deadline = t0 + timeout
        status: int | None = None
        ru: Any = None
        timed_out = stopped = False
        while prog:
            if prog in self._adopted:
                status = self._adopted[prog]
                break
            try:
                wpid, st, ru = os.wait4(prog, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:  # reaped above, or not (yet) ours
                wpid = 0
                if prog in self._adopted:
                    continue
            if wpid == prog:
                if os.WIFSTOPPED(st):
                    stopped = True
                else:
                    status = st
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            for fd in [f for f in open_fds if f != st_r]:
                pump(fd, True)
            time.sleep(0.001)
        dur = time.monotonic() - t0
        if status is None and prog:
            with contextlib.suppress(OSError):
                os.kill(prog, _SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _, status, ru = os.wait4(prog, 0)
        clean = _kill_everything(self.container)
        with contextlib.suppress(OSError):
            self.zsock.close()
        self._spawn_zygote()
        cpu = ru.ru_utime + ru.ru_stime if ru is not None else 0.0
        faults = ru.ru_minflt if ru is not None else 0
        note = "the program killed or stopped the fork server; finished by the controller"
        if not prog:
            return (None, 0.0, 0, dur, False, False, clean, 0.0, "fork server lost"), note
        return (status, cpu, faults, dur, timed_out, stopped, clean, 0.0, ""), note

    def _file_fd(self, work: str, name: str, data: bytes) -> int:
        """A read-only descriptor of ``data`` via an unlinked file in the work dir."""
        path = os.path.join(work, name)
        with open(path, "wb") as fh:
            fh.write(data)
        fd = os.open(path, os.O_RDONLY)
        os.unlink(path)
        return fd

    def _wipe(self, work: str) -> bool:
        if self.container:
            ok = True
            for d in _CONTAINER_WIPE:
                ok = _wipe_dir(d) and ok
            return ok
        ok = _wipe_dir(work)
        try:
            os.rmdir(work)
        except FileNotFoundError:
            pass
        except OSError:
            ok = False
        return ok

    # ---- main loop ------------------------------------------------------------------------
    def serve(self) -> int:
        import json

        self._await_zygote()

        _emit(
            {
                "ready": True,
                "protocol": PROTOCOL,
                "pid": os.getpid(),
                "zygote_pid": self.zpid,
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
                why = f"driver error: {exc}"
                clean = False
                try:
                    if self.dirty:  # the zygote may still be busy with it: start afresh
                        self._replace_zygote()
                        self.dirty = False
                    clean = self._wipe(self.work)
                except Exception as exc2:
                    why += f"; recovery failed: {exc2}"
                res = {"id": req.get("id"), "spawn_error": why}
                if not clean:  # retire (below) unless the slate is provably clean again
                    res["anomaly"] = why
            if res.get("anomaly"):
                # the slate is not provably clean (or the fork server misbehaved): never
                # run another program here; the host re-runs the queued ones elsewhere
                _emit(res)
                return 3
            # hold while ≥ 4 more requests are queued: flushing before the queue runs dry
            # lets the host refill it while the last queued programs still run
            _emit(res, hold=_INBUF.count(b"\n") >= 4)


def main(argv: list[str]) -> int:
    global _PRELOAD
    role = argv[0] if argv else "container"
    if role == "zygote":
        return _zygote_main(argv)
    if len(argv) > 1:  # optional comma list overriding the modules the zygote preloads
        _PRELOAD = [m for m in argv[1].split(",") if m]
    return Controller(role).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
