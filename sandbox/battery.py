"""Hostile conformance battery: every Sandbox must type these programs and survive them.

``run_battery(sandbox)`` runs each hostile program followed by a *detector*
program that looks for every trace a hostile program could leave (files in
``/tmp``, ``/dev/shm`` and the working directory, environment, cwd, leftover
processes, daemon heartbeats, SysV IPC, exhausted disk or memory). With a
sandbox of parallelism 1 the detector runs right after its hostile program on
the same worker, so "no contamination" is a conclusive check rather than a
lucky schedule; ``harness sandbox check`` therefore uses a pool of one.

After the programs, host-side checks confirm nothing escaped: a host-only
secret file is unchanged and was unreadable, a real TCP listener on the host
loopback saw no connection, and the pool still runs healthy programs.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .base import ExecResult, ExecStatus, Program, Sandbox

__all__ = ["BatteryReport", "CaseOutcome", "HostileCase", "hostile_cases", "run_battery"]

S = ExecStatus
Check = Callable[[ExecResult, int], str | None]


@dataclass(frozen=True)
class HostileCase:
    """One hostile program with its expected typed status(es) per sandbox kind."""

    name: str
    source: str
    expect: frozenset[ExecStatus]
    kinds: frozenset[str] = frozenset({"docker", "local"})
    expect_local: frozenset[ExecStatus] | None = None
    check: Check | None = None
    stdin: str = ""

    def expected_for(self, kind: str) -> frozenset[ExecStatus]:
        if kind == "local" and self.expect_local is not None:
            return self.expect_local
        return self.expect


@dataclass
class CaseOutcome:
    name: str
    expected: list[str]
    got: str
    detail: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    contamination: list[str] = field(default_factory=list)


@dataclass
class BatteryReport:
    sandbox_kind: str
    image_id: str | None
    cases: list[CaseOutcome]
    host_problems: list[str]
    seconds: float

    @property
    def failures(self) -> list[CaseOutcome]:
        return [c for c in self.cases if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.host_problems

    def summary(self) -> str:
        bad = self.failures
        contam = sum(len(c.contamination) for c in self.cases)
        lines = [
            f"hostile battery on {self.sandbox_kind} ({self.image_id or 'no image'}): "
            f"{len(self.cases) - len(bad)}/{len(self.cases)} cases as expected, "
            f"contamination findings {contam}, host problems {len(self.host_problems)}, "
            f"{self.seconds:.1f} s"
        ]
        for c in bad:
            lines.append(
                f"  FAIL {c.name}: expected {c.expected}, got {c.got} ({c.detail}); "
                + "; ".join(c.problems + c.contamination)
            )
        lines.extend(f"  HOST {p}" for p in self.host_problems)
        return "\n".join(lines)


def _d(src: str) -> str:
    return textwrap.dedent(src).strip() + "\n"


def _truncated_within(cap_field: str) -> Check:
    def check(r: ExecResult, cap: int) -> str | None:
        text = getattr(r, cap_field)
        if not r.truncated:
            return "output not flagged truncated"
        if len(text) > cap:  # ≤ cap bytes captured; decoding never adds characters
            return f"{cap_field} has {len(text)} chars, cap {cap} bytes"
        return None

    return check


def _stdout_has(marker: str) -> Check:
    def check(r: ExecResult, cap: int) -> str | None:
        return None if marker in r.stdout else f"stdout lacks {marker!r}: {r.stdout[:200]!r}"

    return check


def hostile_cases(token: str, *, secret_path: str, port: int) -> list[HostileCase]:
    """The battery (≥30 programs). ``token`` makes trace paths unique per run."""
    frozenset({"docker", "local"})
    docker = frozenset({"docker"})
    return [
        HostileCase(
            "fork_bomb",
            _d("""
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """),
            frozenset({S.TIMEOUT}),
            kinds=docker,  # on a bare host a fork bomb is the host's problem: docker only
        ),
        HostileCase(
            "memory_bomb",
            "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n",
            frozenset({S.OOM}),
        ),
        HostileCase("huge_single_allocation", "x = bytearray(1 << 40)\n", frozenset({S.OOM})),
        HostileCase("infinite_loop", "while True:\n    pass\n", frozenset({S.TIMEOUT})),
        HostileCase(
            "sleep_past_timeout", "import time\ntime.sleep(3600)\n", frozenset({S.TIMEOUT})
        ),
        HostileCase(
            "infinite_stdout",
            "while True:\n    print('x' * 1000)\n",
            frozenset({S.TIMEOUT}),
            check=_truncated_within("stdout"),
        ),
        HostileCase(
            "huge_single_line",
            "import sys\nsys.stdout.write('y' * (40 << 20))\n",
            frozenset({S.PASSED}),
            check=_truncated_within("stdout"),
        ),
        HostileCase(
            "stderr_flood",
            "import sys\nfor _ in range(100000):\n    sys.stderr.write('e' * 200 + '\\n')\n",
            frozenset({S.PASSED}),
            check=_truncated_within("stderr"),
        ),
        HostileCase("write_root", "open('/pwned', 'w').write('x')\n", frozenset({S.FAILED})),
        HostileCase(
            "write_etc",
            "open('/etc/passwd', 'a').write('evil::0:0::/:/bin/sh\\n')\n",
            frozenset({S.FAILED}),
        ),
        HostileCase(
            "write_proc",
            "open('/proc/sys/kernel/hostname', 'w').write('pwned')\n",
            frozenset({S.FAILED}),
        ),
        HostileCase(
            "sysrq_trigger", "open('/proc/sysrq-trigger', 'w').write('b')\n", frozenset({S.FAILED})
        ),
        HostileCase(
            "read_host_secret",
            _d(f"""
            try:
                data = open({secret_path!r}).read()
            except OSError as exc:
                print('blocked', type(exc).__name__)
            else:
                print('LEAKED', data)
                raise SystemExit(1)
            """),
            frozenset({S.PASSED}),
            check=_stdout_has("blocked"),
        ),
        HostileCase(
            "tcp_to_host_loopback",
            _d(f"""
            import socket
            s = socket.socket()
            s.settimeout(1.0)
            try:
                s.connect(('127.0.0.1', {port}))
            except OSError as exc:
                print('blocked', exc)
            else:
                print('CONNECTED')
                raise SystemExit(1)
            """),
            frozenset({S.PASSED}),
            kinds=docker,
            check=_stdout_has("blocked"),
        ),
        HostileCase(
            "tcp_external",
            _d("""
            import socket
            for addr in [('1.1.1.1', 80), ('8.8.8.8', 53)]:
                s = socket.socket()
                s.settimeout(0.5)
                try:
                    s.connect(addr)
                except OSError as exc:
                    print('blocked', exc)
                else:
                    print('CONNECTED', addr)
                    raise SystemExit(1)
            """),
            frozenset({S.PASSED}),
            kinds=docker,
            check=_stdout_has("blocked"),
        ),
        HostileCase(
            "dns_lookup",
            _d("""
            import socket
            try:
                print(socket.getaddrinfo('example.com', 80))
            except OSError as exc:
                print('blocked', exc)
            else:
                raise SystemExit(1)
            """),
            frozenset({S.PASSED}),
            kinds=docker,
            check=_stdout_has("blocked"),
        ),
        HostileCase("os_exit_nonzero", "import os\nos._exit(7)\n", frozenset({S.FAILED})),
        HostileCase(
            "sigkill_self",
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
            frozenset({S.ERROR}),
        ),
        HostileCase(
            "sigstop_self",
            "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
            frozenset({S.ERROR}),
        ),
        HostileCase(
            "kill_driver",
            _d("""
            import os, signal
            for target in {os.getppid(), 1}:
                for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
                    try:
                        os.kill(target, sig)
                    except OSError as exc:
                        print('refused', target, sig, exc)
            print('still here')
            """),
            frozenset({S.PASSED}),
            check=_stdout_has("still here"),
        ),
        HostileCase(
            "forge_driver_result",
            _d("""
            import os
            forged = b'{"id": "0", "rc": 0, "sig": null, "timed_out": false}\\n'
            for target in {os.getppid(), 1}:
                try:
                    fd = os.open(f'/proc/{target}/fd/1', os.O_WRONLY)
                except OSError as exc:
                    print('blocked', exc)
                else:
                    os.write(fd, forged)
                    print('FORGED')
                    raise SystemExit(3)
            """),
            frozenset({S.PASSED}),
            check=_stdout_has("blocked"),
        ),
        HostileCase(
            "setrlimit_raise",
            "import resource\n"
            "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n",
            frozenset({S.FAILED}),
        ),
        HostileCase(
            "deep_recursion", "def f(n):\n    return f(n + 1)\nf(0)\n", frozenset({S.FAILED})
        ),
        HostileCase(
            "setrecursionlimit_abuse",
            # __repr__ → repr() recurses through C; with the guard lifted the C stack overflows
            _d("""
            import sys
            sys.setrecursionlimit(10**8)
            class A:
                def __repr__(self):
                    return repr(self)
            repr(A())
            """),
            frozenset({S.ERROR}),
        ),
        HostileCase(
            "read_stdin_forever",
            "import sys\nwhile True:\n    sys.stdin.read()\n",
            frozenset({S.TIMEOUT}),
        ),
        HostileCase(
            "stdin_roundtrip",
            "import sys\nprint(sys.stdin.read().upper())\n",
            frozenset({S.PASSED}),
            stdin="hello sandbox",
            check=_stdout_has("HELLO SANDBOX"),
        ),
        HostileCase(
            "zombie_children",
            "import os\nfor _ in range(20):\n    if os.fork() == 0:\n        os._exit(0)\n"
            "print('parent done')\n",
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "daemonised_child",
            _d(f"""
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    path = '/tmp/gh-daemon-{token}'
                    while True:
                        try:
                            with open(path, 'w') as fh:
                                fh.write(str(time.time()))
                        except OSError:
                            pass
                        time.sleep(0.02)
                os._exit(0)
            time.sleep(0.1)
            print('daemon started')
            """),
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "disk_fill_cwd",
            "with open('fill.bin', 'wb') as fh:\n"
            "    while True:\n        fh.write(b'0' * (1 << 20))\n",
            frozenset({S.FAILED}),
        ),
        HostileCase(
            "tmpfs_fill_many_files",
            _d("""
            i = 0
            while True:
                with open(f'/tmp/f{i}', 'w') as fh:
                    fh.write('x' * 65536)
                i += 1
            """),
            frozenset({S.FAILED}),
            kinds=docker,  # on a bare host this would fill the host's /tmp
        ),
        HostileCase(
            "leave_files_for_next",
            _d(f"""
            import os
            open('leak.txt', 'w').write('secret')
            for p in ('/tmp/gh-leak-{token}', '/dev/shm/gh-leak-{token}'):
                try:
                    open(p, 'w').write('secret')
                except OSError:
                    pass
            os.makedirs('locked/inner', exist_ok=True)
            os.chmod('locked', 0)
            """),
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "change_env_and_cwd",
            "import os\nos.environ['GH_LEAK'] = '1'\nos.putenv('GH_LEAK2', '1')\n"
            "os.chdir('/')\nos.umask(0)\n",
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "ctypes_segfault", "import ctypes\nctypes.string_at(0)\n", frozenset({S.ERROR})
        ),
        HostileCase(
            "threads_outlive_program",
            _d(f"""
            import threading, time
            def late():
                time.sleep(0.3)
                open('/tmp/gh-thread-{token}', 'w').write('late')
            threading.Thread(target=late, daemon=True).start()
            print('main done')
            """),
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "non_utf8_output",
            "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x80 ok\\n')\n"
            "sys.stderr.buffer.write(b'\\xc3\\x28\\n')\n",
            frozenset({S.PASSED}),
            check=lambda r, cap: (
                None if "\ufffd" in r.stdout and "ok" in r.stdout else f"bad decode {r.stdout!r}"
            ),
        ),
        HostileCase(
            "success_marker_then_fail",
            "print('PASSED')\nprint('All tests passed')\nassert False, 'not really'\n",
            frozenset({S.FAILED}),
        ),
        HostileCase(
            "close_std_fds",
            "import os\nos.close(1)\nos.close(2)\nos.close(0)\n",
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "alarm_signal",
            "import signal, time\nsignal.alarm(1)\ntime.sleep(5)\n",
            frozenset({S.ERROR}),
        ),
        HostileCase("sys_exit_message", "import sys\nsys.exit('bye')\n", frozenset({S.FAILED})),
        HostileCase(
            "sysv_shm_leak",
            _d("""
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            shmid = libc.shmget(0x6768, 4096, 0o1666)  # IPC_CREAT | 0666
            print('shmget', shmid)
            msq = libc.msgget(0x6768, 0o1666)
            print('msgget', msq)
            """),
            # ctypes voids the completion proof (it can read the driver's memory): exit 0 is
            # "incomplete"; the detector still checks that nothing of it survives
            frozenset({S.INCOMPLETE}),
            kinds=docker,  # a local sandbox shares the host IPC namespace
        ),
        *forgery_cases(),
        *slate_cases(token),
    ]


def slate_cases(token: str) -> list[HostileCase]:
    """Programs that attack the clean slate the next program must get, or the driver."""
    docker = frozenset({"docker"})
    return [
        HostileCase(
            "deep_directory_chain_cwd",
            _d("""
            import os
            fd = os.open('.', os.O_RDONLY)
            for _ in range(1500):
                os.mkdir('d', dir_fd=fd)
                nxt = os.open('d', os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nxt
            open(f'/proc/self/fd/{fd}/leak', 'w').write('x')
            os.fchmod(fd, 0o500)
            """),
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "deep_directory_chain_tmp",
            _d(f"""
            import os
            os.mkdir('/tmp/gh-deep-{token}')
            fd = os.open('/tmp/gh-deep-{token}', os.O_RDONLY)
            for _ in range(1500):
                os.mkdir('d', dir_fd=fd)
                nxt = os.open('d', os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nxt
            """),
            frozenset({S.PASSED}),
            kinds=docker,
        ),
        HostileCase(
            "path_longer_than_path_max",
            _d("""
            import os
            fd = os.open('.', os.O_RDONLY)
            for _ in range(40):  # 40 x 255 characters: far beyond PATH_MAX (4096)
                os.mkdir('n' * 255, dir_fd=fd)
                nxt = os.open('n' * 255, os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nxt
            os.symlink('/etc/passwd', 'x', dir_fd=fd)
            os.mkdir('locked', 0, dir_fd=fd)
            """),
            frozenset({S.PASSED}),
        ),
        HostileCase(
            "inode_flood_long_names",
            _d("""
            i = 0
            while True:
                open('/dev/shm/' + str(i).rjust(250, 'f'), 'w').close()
                open('/tmp/' + str(i).rjust(250, 'f'), 'w').close()
                i += 1
            """),
            frozenset({S.FAILED}),  # ENOSPC at the nr_inodes cap
            kinds=docker,
        ),
        HostileCase(
            "hard_link_flood_kernel_memory",
            # dentries are kernel memory charged to the container's cgroup and no one's
            # RSS: the program must be the OOM killer's choice (oom_score_adj 1000),
            # never the driver, and its own result must say so
            _d("""
            import os
            open('/tmp/base', 'w').close()
            i = 0
            while True:
                os.link('/tmp/base', '/tmp/' + str(i).rjust(240, 'h'))
                i += 1
            """),
            frozenset({S.OOM, S.FAILED, S.TIMEOUT}),
            kinds=docker,
        ),
        HostileCase(
            "oom_score_adj_is_1000",
            "print(open('/proc/self/oom_score_adj').read().strip())\n",
            frozenset({S.PASSED}),
            kinds=docker,
            check=_stdout_has("1000"),
        ),
        HostileCase(
            "seccomp_denies_vsock_and_io_uring",
            _d("""
            import socket
            try:
                socket.socket(40, socket.SOCK_STREAM)  # AF_VSOCK
                print('VSOCK OPEN')
            except OSError as exc:
                print('vsock denied', exc.errno)
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.syscall(425, 1, 0) == -1 and ctypes.get_errno() == 1:
                print('io_uring denied')
            """),
            frozenset({S.INCOMPLETE}),  # ctypes voids the completion proof
            kinds=docker,
            check=lambda r, cap: (
                None
                if "vsock denied" in r.stdout and "io_uring denied" in r.stdout
                else f"not denied: {r.stdout!r}"
            ),
        ),
        HostileCase(
            "host_paths_not_visible",
            _d("""
            seen = open('/proc/net/unix').read() + open('/proc/self/mountinfo').read()
            bad = [w for w in ('gate-harness-sbx', 'gate-harness-local') if w in seen]
            print('HOST PATH' if bad else 'nothing named', bad)
            """),
            frozenset({S.PASSED}),
            kinds=docker,
            check=_stdout_has("nothing named"),
        ),
        HostileCase(
            "lone_surrogate_source",
            "print('\ud800')\n",
            frozenset({S.REJECTED}),
        ),
        HostileCase(
            "oversize_source",
            "x = 1\n" + "#" * (5 << 20) + "\n",
            frozenset({S.REJECTED}),
        ),
    ]


#: a wrong solution whose hidden test fails: every forgery below must not turn it into a pass
_WRONG = "def add(a, b):\n    return a - b\n"
_CHECK = "def check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"

#: (name, trick placed between the wrong solution and its test) — the classes of the
#: self-forgery attacks: leave early with status 0, exit 0 after the test failed, void the
#: proof by introspection, or forge the proof channel itself
_FORGERIES: tuple[tuple[str, str], ...] = (
    ("sys_exit_0", "import sys\nsys.exit(0)\n"),
    ("sys_exit_false", "import sys\nsys.exit(False)\n"),
    ("raise_systemexit", "raise SystemExit\n"),
    ("builtin_exit", "exit()\n"),
    ("systemexit_subclass", "class Done(SystemExit):\n    pass\nraise Done(0)\n"),
    (
        "exit_inside_function",
        "def add(a, b):\n    import sys\n    sys.exit(0)\n",
    ),
    ("os_exit_module_level", "import os\nos._exit(0)\n"),
    ("atexit_os_exit", "import atexit, os\natexit.register(os._exit, 0)\n"),
    (
        "thread_os_exit_after_main",
        "import threading, os, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0))).start()\n",
    ),
    (
        "settrace_exit_on_check",
        "import sys, os\n"
        "def tr(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'check':\n"
        "        os._exit(0)\n"
        "    return None\n"
        "sys.settrace(tr)\n",
    ),
    (
        "settrace_jump_over_asserts",
        "import sys\n"
        "def tr(frame, event, arg):\n"
        "    if frame.f_code.co_name == 'check':\n"
        "        if event == 'line' and frame.f_lineno == frame.f_code.co_firstlineno + 1:\n"
        "            try:\n"
        "                frame.f_lineno = frame.f_code.co_firstlineno + 2\n"
        "            except ValueError:\n"
        "                pass\n"
        "        return tr\n"
        "    return tr\n"
        "sys.settrace(tr)\n",
    ),
    ("execv_true", "import os\nos.execv('/bin/true', ['true'])\n"),
    ("fork_parent_exits_0", "import os\nif os.fork():\n    os._exit(0)\n"),
    ("forge_proof_event", "import sys, os\nsys.audit('gate_harness.proof')\nos._exit(0)\n"),
    (
        "write_proof_pipes",
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'\\0' * 16)\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
    ),
    (
        "steal_token_via_gc_then_exit",
        "import gc, os\n"
        "for o in gc.get_objects():\n"
        "    if type(o) is bytearray and len(o) == 16:\n"
        "        for fd in range(3, 64):\n"
        "            try:\n                os.write(fd, bytes(o))\n"
        "            except OSError:\n                pass\n"
        "os._exit(0)\n",
    ),
    (
        "monkeypatch_os_write_then_exit",
        "import os\n_w = os.write\nos.write = lambda fd, b: _w(fd, b)\nimport sys\nsys.exit(0)\n",
    ),
)


def forgery_cases() -> list[HostileCase]:
    """Wrong solution + a trick: the result must be incomplete or failed, never passed."""
    not_passed = frozenset({S.INCOMPLETE, S.FAILED})
    return [
        HostileCase(f"forge_{name}", _WRONG + trick + _CHECK, not_passed)
        for name, trick in _FORGERIES
    ]


def _detector(kind: str, token: str) -> str:
    """Program that exits 0 only when no trace of any previous program is visible."""
    return _d(f"""
    import os, sys, time
    problems = []
    kind = {kind!r}
    cwd = os.getcwd()
    if os.listdir('.'):
        problems.append(f'cwd not empty: {{os.listdir(".")}}')
    if 'GH_LEAK' in os.environ or 'GH_LEAK2' in os.environ:
        problems.append('environment leaked')
    if cwd == '/':
        problems.append('cwd leaked')
    if os.umask(0o077) != 0o077:
        problems.append('umask leaked')
    for p in ('/tmp/gh-thread-{token}', '/tmp/gh-leak-{token}', '/dev/shm/gh-leak-{token}',
              '/tmp/gh-deep-{token}', '/tmp/base'):
        if kind == 'docker' and os.path.exists(p):
            problems.append(f'file leaked: {{p}}')
    hb = '/tmp/gh-daemon-{token}'
    if os.path.exists(hb):
        m0 = os.stat(hb).st_mtime
        time.sleep(0.12)
        if os.path.exists(hb) and os.stat(hb).st_mtime != m0:
            problems.append('daemonised child still alive')
    if kind == 'docker':
        others = sorted(set(os.listdir('/tmp')) - {{os.path.basename(cwd)}})
        if others:
            problems.append(f'/tmp not clean: {{others[:5]}}')
        if os.listdir('/dev/shm'):
            problems.append('/dev/shm not clean')
        driver = {{'1', str(os.getpid())}}
        try:  # our parent may be the driver's fork server ("zygote"), nothing else
            with open(f'/proc/{{os.getppid()}}/cmdline', 'rb') as fh:
                if b'\\0zygote\\0' in fh.read():
                    driver.add(str(os.getppid()))
        except OSError:
            pass
        procs = [p for p in os.listdir('/proc') if p.isdigit() and p not in driver]
        if procs:
            problems.append(f'leftover processes: {{procs[:10]}}')
        for kind_, name in (('shm', 'SysV shm segment'), ('msg', 'SysV message queue')):
            try:  # /proc, not ctypes: ctypes would void this detector's completion proof
                with open(f'/proc/sysvipc/{{kind_}}') as fh:
                    if any(line.split()[:1] == ['26472'] for line in fh):
                        problems.append(f'{{name}} leaked')
            except OSError:
                pass
    try:
        with open('probe.bin', 'wb') as fh:
            fh.write(b'0' * (1 << 20))
        os.unlink('probe.bin')
    except OSError as exc:
        problems.append(f'cannot write 1 MiB: {{exc}}')
    try:
        block = bytearray(64 << 20)
        del block
    except MemoryError:
        problems.append('cannot allocate 64 MiB')
    if problems:
        print('CONTAMINATED:', '; '.join(problems))
        sys.exit(1)
    print('clean')
    """)


class _Listener:
    """A real TCP listener on the host loopback that records any connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def run_battery(
    sandbox: Sandbox,
    *,
    timeout_s: float = 1.0,
    finish_timeout_s: float = 20.0,
    memory_mb: int = 256,
    output_cap: int = 64 * 1024,
    only: list[str] | None = None,
) -> BatteryReport:
    """Run the hostile battery (cases applicable to ``sandbox.kind``) and host post-checks.

    Cases expected to time out run with ``timeout_s``; all others get the generous
    ``finish_timeout_s`` so a loaded machine cannot turn a correct verdict into a
    flaky timeout. Each case is followed by its detector inside the same ``run`` call.
    """
    t0 = time.monotonic()
    kind = sandbox.kind
    token = secrets.token_hex(4)
    fd, secret_path = tempfile.mkstemp(prefix="gh-host-secret-")
    secret = secrets.token_hex(16)
    os.write(fd, secret.encode())
    os.close(fd)
    os.chmod(secret_path, 0o600)
    listener = _Listener()
    try:
        cases = [
            c
            for c in hostile_cases(token, secret_path=secret_path, port=listener.port)
            if kind in c.kinds and (only is None or c.name in only)
        ]
        programs: list[Program] = []
        results: list[ExecResult] = []
        for expect_timeout, limit in ((True, timeout_s), (False, finish_timeout_s)):
            group: list[Program] = []
            for c in cases:
                if (c.expected_for(kind) == {S.TIMEOUT}) is expect_timeout:
                    group.append(Program(c.source, stdin=c.stdin, id=f"hostile:{c.name}"))
                    group.append(Program(_detector(kind, token), id=f"detector:{c.name}"))
            if group:
                programs.extend(group)
                results.extend(
                    sandbox.run(group, timeout_s=limit, memory_mb=memory_mb, output_cap=output_cap)
                )
        host_problems: list[str] = []
        if len(results) != len(programs) or [r.program_id for r in results] != [
            p.id for p in programs
        ]:
            host_problems.append(
                f"results lost, duplicated or reordered: {len(results)} results "
                f"for {len(programs)} programs"
            )
        by_id = {r.program_id: r for r in results}
        outcomes: list[CaseOutcome] = []
        for c in cases:
            exp = c.expected_for(kind)
            r = by_id.get(f"hostile:{c.name}")
            det = by_id.get(f"detector:{c.name}")
            if r is None or det is None:
                outcomes.append(
                    CaseOutcome(c.name, sorted(s.value for s in exp), "missing", "no result", False)
                )
                continue
            problems: list[str] = []
            if c.check is not None and r.status in exp:
                msg = c.check(r, output_cap)
                if msg:
                    problems.append(msg)
            if max(len(r.stdout), len(r.stderr)) > output_cap:
                problems.append("output exceeds cap")
            contamination = []
            if det.status is not S.PASSED:
                contamination.append(
                    f"detector {det.status.value}: {det.stdout.strip()[:300]} {det.stderr[-300:]}"
                )
            outcomes.append(
                CaseOutcome(
                    name=c.name,
                    expected=sorted(s.value for s in exp),
                    got=r.status.value,
                    detail=r.detail,
                    ok=r.status in exp and not problems and not contamination,
                    problems=problems,
                    contamination=contamination,
                )
            )
        # host-side post-checks: nothing escaped, the pool is still healthy
        if (
            Path(secret_path).read_text() != secret
            or (os.stat(secret_path).st_mode & 0o777) != 0o600
        ):
            host_problems.append("host secret file was modified")
        if Path("/pwned").exists():
            host_problems.append("a program wrote /pwned on the host")
        if listener.connections:
            host_problems.append(
                f"host loopback listener received {listener.connections} connection(s)"
            )
        healthy = sandbox.run(
            [
                Program("import math\nassert math.factorial(5) == 120\nprint('ok')")
                for _ in range(2 * sandbox.parallelism)
            ],
            timeout_s=finish_timeout_s,
            memory_mb=memory_mb,
        )
        bad = [r for r in healthy if r.status is not S.PASSED]
        if bad:
            host_problems.append(
                f"pool unhealthy after battery: {[(r.status.value, r.detail) for r in bad]}"
            )
        health = getattr(sandbox, "health", None)
        if callable(health):
            host_problems.extend(health())
    finally:
        listener.close()
        os.unlink(secret_path)
        for leftover in (
            f"/tmp/gh-daemon-{token}",
            f"/tmp/gh-leak-{token}",
            f"/tmp/gh-thread-{token}",
            f"/dev/shm/gh-leak-{token}",
        ):
            if os.path.lexists(leftover):
                os.unlink(leftover)
    return BatteryReport(
        sandbox_kind=kind,
        image_id=sandbox.image_id,
        cases=outcomes,
        host_problems=host_problems,
        seconds=time.monotonic() - t0,
    )
