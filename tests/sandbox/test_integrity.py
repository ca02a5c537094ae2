"""Result integrity: a wrong HumanEval completion can never make itself ``passed``.

Every program here is the reference assembly ``prompt + completion + test +
check(entry_point)`` of a real HumanEval task, run through the Docker pool. The
completions are wrong (the hidden test fails) and add one self-forgery trick each;
grouped by class, several variants per class. The control class shows that correct
completions — including ones that use threads, forks or frame introspection
innocently — still pass, so the proof does not cost honest programs anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from harness.evaluators.humaneval import HumanEvalTask, build_program, load_tasks
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox

pytestmark = pytest.mark.docker

#: HumanEval/2 truncate_number: the wrong body below fails its hidden test
_TASK_ID = "HumanEval/2"
_WRONG_BODY = "    return number\n"


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    (t,) = load_tasks(task_ids=[_TASK_ID])
    return t


def _run(sandbox: Sandbox, task: HumanEvalTask, completions: Sequence[str]) -> list[ExecResult]:
    programs = [Program(build_program(task, c), id=f"c{i}") for i, c in enumerate(completions)]
    return sandbox.run(programs, timeout_s=10)


def _wrong_with(trick: str) -> str:
    """The wrong body, then ``trick`` at module level (before the hidden test runs)."""
    return _WRONG_BODY + "\n" + trick


def _assert_not_passed(results: Sequence[ExecResult], expect: ExecStatus) -> None:
    for r in results:
        assert r.status is expect, (r.program_id, r.status, r.detail, r.stderr[-300:])
        assert not r.passed


class TestEarlyExitWithStatusZero:
    """Leaving before ``check`` finished, with exit status 0, is ``incomplete``."""

    VARIANTS: ClassVar[dict[str, str]] = {
        "sys.exit(0)": "import sys\nsys.exit(0)\n",
        "sys.exit(False)": "import sys\nsys.exit(False)\n",
        "sys.exit(None)": "import sys\nsys.exit(None)\n",
        "raise SystemExit": "raise SystemExit\n",
        "exit()": "exit()\n",
        "quit()": "quit()\n",
        "SystemExit subclass": "class Ok(SystemExit):\n    pass\nraise Ok(0)\n",
        "os._exit(0)": "import os\nos._exit(0)\n",
        "os.execv /bin/true": "import os\nos.execv('/bin/true', ['true'])\n",
        "os.kill self SIGTERM after SIG_IGN then exit": (
            "import os, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nos._exit(0)\n"
        ),
    }

    def test_module_level_exit_variants(self, docker_sandbox: Sandbox, task: HumanEvalTask) -> None:
        results = _run(docker_sandbox, task, [_wrong_with(t) for t in self.VARIANTS.values()])
        _assert_not_passed(results, ExecStatus.INCOMPLETE)
        assert all("no completion proof" in r.detail for r in results)

    def test_exit_inside_the_candidate_function(
        self, docker_sandbox: Sandbox, task: HumanEvalTask
    ) -> None:
        bodies = [
            "    import sys\n    sys.exit(0)\n",
            "    raise SystemExit(0)\n",
            "    import os\n    os._exit(0)\n",
            "    exit(0)\n",
        ]
        _assert_not_passed(_run(docker_sandbox, task, bodies), ExecStatus.INCOMPLETE)

    def test_exit_from_a_finalizer_during_the_test(
        self, docker_sandbox: Sandbox, task: HumanEvalTask
    ) -> None:
        # a generator whose close() raises SystemExit while the test is running
        trick = (
            "def _g():\n    try:\n        yield\n    finally:\n        raise SystemExit(0)\n"
            "_it = _g(); next(_it)\n"
            "def truncate_number(number):\n    del globals()['_it']\n    return number\n"
        )
        (r,) = _run(docker_sandbox, task, [_wrong_with(trick)])
        assert r.status in (ExecStatus.INCOMPLETE, ExecStatus.FAILED), r.detail


class TestExitZeroAfterTheTestFailed:
    """The test failed, then something else forced status 0: still not a pass."""

    VARIANTS: ClassVar[dict[str, str]] = {
        "atexit os._exit": "import atexit, os\natexit.register(os._exit, 0)\n",
        "atexit lambda": "import atexit, os\natexit.register(lambda: os._exit(0))\n",
        "non-daemon thread": (
            "import threading, os, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0))).start()\n"
        ),
        "daemon thread": (
            "import threading, os, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.0), os._exit(0)), daemon=True)"
            ".start()\ntime.sleep(0.01)\n"
        ),
        "excepthook exits": "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\n",
        "sys.exit via __del__": (
            "import os\nclass D:\n    def __del__(self):\n        os._exit(0)\n_keep = D()\n"
        ),
        "forked parent exits 0": "import os, time\nif os.fork():\n    os._exit(0)\n",
        "forked child sleeps, parent exits": (
            "import os, time\npid = os.fork()\nif pid:\n    os._exit(0)\ntime.sleep(0.2)\n"
        ),
    }

    def test_variants(self, docker_sandbox: Sandbox, task: HumanEvalTask) -> None:
        results = _run(docker_sandbox, task, [_wrong_with(t) for t in self.VARIANTS.values()])
        for name, r in zip(self.VARIANTS, results, strict=True):
            assert r.status in (ExecStatus.INCOMPLETE, ExecStatus.FAILED), (name, r.detail)


class TestTamperingVoidsTheProof:
    """Trace hooks and memory introspection destroy the token before they can use it."""

    VARIANTS: ClassVar[dict[str, str]] = {
        "settrace exits on check": (
            "import sys, os\n"
            "def tr(frame, event, arg):\n"
            "    if event == 'call' and frame.f_code.co_name == 'check':\n"
            "        os._exit(0)\n"
            "sys.settrace(tr)\n"
        ),
        "setprofile exits on check": (
            "import sys, os\n"
            "def pr(frame, event, arg):\n"
            "    if event == 'call' and frame.f_code.co_name == 'check':\n"
            "        os._exit(0)\n"
            "sys.setprofile(pr)\n"
        ),
        "settrace jumps over the asserts": (
            "import sys\n"
            "def tr(frame, event, arg):\n"
            "    if frame.f_code.co_name == 'check' and event == 'line':\n"
            "        last = max(l for _, _, l in frame.f_code.co_lines() if l)\n"
            "        if frame.f_lineno < last:\n"
            "            try:\n                frame.f_lineno = last\n"
            "            except ValueError:\n                pass\n"
            "    return tr\n"
            "sys.settrace(tr)\n"
            "def truncate_number(number):\n    return 0.5\n"
        ),
        "threading.settrace": (
            "import threading, sys\nthreading.settrace(lambda *a: None)\nimport os\nos._exit(0)\n"
        ),
        "gc token hunt": (
            "import gc, os\n"
            "for o in gc.get_objects():\n"
            "    if type(o) is bytearray and len(o) == 16:\n"
            "        for fd in range(3, 32):\n"
            "            try:\n                os.write(fd, bytes(o))\n"
            "            except OSError:\n                pass\n"
            "os._exit(0)\n"
        ),
        "gc referents of frames": (
            "import gc, sys, os\nf = sys._getframe()\n"
            "while f:\n    gc.get_referents(f)\n    f = f.f_back\nos._exit(0)\n"
        ),
        "ctypes memory read": ("import ctypes, os\nctypes.string_at(id(os), 64)\nos._exit(0)\n"),
        "proc self mem via symlink": (
            "import os\nos.symlink('/proc/self/mem', 'm')\n"
            "try:\n    open('m', 'rb')\nexcept OSError:\n    pass\nos._exit(0)\n"
        ),
        "proc self mem via a relative symlink chain": (
            "import os\nos.symlink('/proc/self/mem', 'b')\nos.symlink('b', 'a')\n"
            "try:\n    open('a', 'rb')\nexcept OSError:\n    pass\nos._exit(0)\n"
        ),
        "proc self mem via dir fd": (
            "import os\nd = os.open('/proc/self', os.O_RDONLY)\n"
            "try:\n    os.open('mem', os.O_RDONLY, dir_fd=d)\nexcept OSError:\n    pass\n"
            "os._exit(0)\n"
        ),
    }

    def test_variants(self, docker_sandbox: Sandbox, task: HumanEvalTask) -> None:
        results = _run(docker_sandbox, task, [_wrong_with(t) for t in self.VARIANTS.values()])
        for name, r in zip(self.VARIANTS, results, strict=True):
            assert r.status in (ExecStatus.INCOMPLETE, ExecStatus.FAILED), (name, r.detail)
            assert not r.passed

    def test_introspection_voids_even_a_correct_solution(
        self, docker_sandbox: Sandbox, task: HumanEvalTask
    ) -> None:
        """Tampering is reported as such, even when the test would have passed."""
        tricks = ["import gc\ngc.get_objects()\n", "import sys\nsys.settrace(None)\n"]
        results = _run(docker_sandbox, task, [task.canonical_solution + "\n" + t for t in tricks])
        _assert_not_passed(results, ExecStatus.INCOMPLETE)
        assert all("introspection" in r.detail for r in results)


class TestForgingTheProofChannel:
    """Writing to every descriptor, raising the proof event, or patching ``os``: no pass."""

    VARIANTS: ClassVar[dict[str, str]] = {
        "spray zeros on fds": (
            "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, bytes(16))\n"
            "    except OSError:\n        pass\nos._exit(0)\n"
        ),
        "raise the proof audit event": "import sys, os\nsys.audit('gate_harness.proof')\n"
        "os._exit(0)\n",
        "proof event from a thread after the failure": (
            "import threading, sys, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.05), sys.audit('gate_harness.proof'))"
            ").start()\n"
        ),
        "patch os.write and sys.audit": (
            "import os, sys\nos.write = lambda fd, b: len(b)\nsys.audit = lambda *a: None\n"
            "os._exit(0)\n"
        ),
        "proof from a forked child": (
            "import os\nif os.fork() == 0:\n    import sys\n    sys.audit('gate_harness.proof')\n"
            "    os._exit(0)\nos.wait()\nos._exit(0)\n"
        ),
    }

    def test_variants(self, docker_sandbox: Sandbox, task: HumanEvalTask) -> None:
        results = _run(docker_sandbox, task, [_wrong_with(t) for t in self.VARIANTS.values()])
        for name, r in zip(self.VARIANTS, results, strict=True):
            assert r.status in (ExecStatus.INCOMPLETE, ExecStatus.FAILED), (name, r.detail)

    def test_token_is_not_in_source_env_argv_or_driver_frames(
        self, docker_sandbox: Sandbox, task: HumanEvalTask
    ) -> None:
        """A correct solution that looks everywhere cheap still passes and finds nothing."""
        probe = (
            "import os, sys\n"
            "seen = [open('/proc/self/cmdline', 'rb').read(), repr(sys.argv).encode(),"
            " repr(dict(os.environ)).encode()]\n"
            "f = sys._getframe()\n"
            "while f:\n    seen.append(repr(sorted(f.f_locals)).encode())\n    f = f.f_back\n"
            "print(sum(len(s) for s in seen))\n"
        )
        (r,) = _run(docker_sandbox, task, [task.canonical_solution + "\n" + probe])
        assert r.status is ExecStatus.PASSED, (r.detail, r.stderr[-500:])


class TestHonestProgramsStillPass:
    """The proof costs nothing to correct completions, even unusual ones."""

    def test_canonical_and_unusual_correct_completions(
        self, docker_sandbox: Sandbox, task: HumanEvalTask
    ) -> None:
        extras = [
            "",
            "import threading\nt = threading.Thread(target=lambda: None)\nt.start()\nt.join()\n",
            "import os\nif os.fork() == 0:\n    os._exit(0)\nos.wait()\n",
            "import collections, typing\nP = collections.namedtuple('P', 'a')\n"
            "T = typing.TypeVar('T')\n",
            "import sys\nsys._getframe().f_back\n",
            "import atexit\natexit.register(print, 'bye')\n",
        ]
        results = _run(docker_sandbox, task, [task.canonical_solution + "\n" + e for e in extras])
        for e, r in zip(extras, results, strict=True):
            assert r.status is ExecStatus.PASSED, (e, r.detail, r.stderr[-300:])

    def test_first_twenty_canonical_solutions_pass(self, docker_sandbox: Sandbox) -> None:
        tasks = load_tasks(limit=20)
        programs = [Program(build_program(t, t.canonical_solution)) for t in tasks]
        results = docker_sandbox.run(programs, timeout_s=10)
        assert [r.status for r in results] == [ExecStatus.PASSED] * len(tasks)
