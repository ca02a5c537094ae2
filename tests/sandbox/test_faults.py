"""One program never damages another's result: retirement, re-runs, clean slates.

Local-driver tests (no Docker) cover the driver's retirement after a wipe that cannot
prove a clean slate, and the pool's re-run of the innocent programs queued behind it.
Docker tests cover the attacks themselves (deep trees, over-long paths, inode and
hard-link floods, a worker lost under two culprits in one batch) and the OOM ordering.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandbox.local as local_mod
from sandbox.base import ExecStatus, Program
from sandbox.local import LocalSandbox

DRIVER = Path(local_mod.__file__).with_name("driver.py")


@pytest.fixture
def failing_wipe_driver(tmp_path: Path) -> Path:
    """A copy of the driver whose wipe can never prove a clean slate."""
    src = DRIVER.read_text(encoding="utf-8")
    head = "def _wipe_dir(path: str) -> bool:\n"
    assert head in src
    path = tmp_path / "driver.py"
    path.write_text(src.replace(head, head + "    return False\n", 1), encoding="utf-8")
    return path


class TestDriverRetiresAfterAnUncleanWipe:
    def test_driver_answers_the_program_then_exits(self, failing_wipe_driver: Path) -> None:
        reqs = "".join(json.dumps({"id": str(i), "src": "print(1)"}) + "\n" for i in range(3))
        proc = subprocess.run(
            [sys.executable, "-I", str(failing_wipe_driver), "local"],
            input=reqs.encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
        assert lines[0]["ready"] is True
        (res,) = lines[1:]  # one answer, then no further program runs on that slate
        assert res["id"] == "0" and res["rc"] == 0 and res["proof"] is True
        assert "could not be removed" in res["anomaly"]
        assert proc.returncode == 3

    def test_innocents_behind_it_rerun_on_fresh_workers_with_attempts(
        self, failing_wipe_driver: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(local_mod, "DRIVER_PATH", failing_wipe_driver)
        with LocalSandbox(pool_size=1) as sb:
            progs = [Program(f"print({i})") for i in range(4)]
            results = sb.run(progs, timeout_s=10)
            assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]
            assert all(r.status is ExecStatus.PASSED for r in results)
            # each program ran first on a fresh worker after every earlier one retired it
            assert [r.attempts for r in results] == [1, 2, 3, 4]
            assert all("worker recycled" in r.detail for r in results)
            assert sb.pool.recycled >= 3


class TestRejectedInputsCostOnlyTheirOwnResult:
    """Lone surrogates and oversize sources: a typed result, the batch runs on."""

    SOURCES: tuple[tuple[str, str], ...] = (
        ("lone surrogate in source", "print('\ud800')\n"),
        ("lone low surrogate", "x = '\udfff'\n"),
        ("oversize", "x = 1\n" + "#" * (2 << 20)),
    )

    def test_local(self) -> None:
        with LocalSandbox(pool_size=1, max_source_bytes=1 << 20) as sb:
            progs = [Program(src) for _, src in self.SOURCES]
            progs.append(Program("print('ok')", stdin="\ud800"))
            progs.append(Program("print('fine')"))
            results = sb.run(progs, timeout_s=10)
        assert [r.status for r in results[:4]] == [ExecStatus.REJECTED] * 4
        assert "not encodable" in results[0].detail and "max_source_bytes" in results[2].detail
        assert "stdin" in results[3].detail
        assert results[4].status is ExecStatus.PASSED and results[4].stdout == "fine\n"


@pytest.fixture(scope="module")
def single(docker_image: str) -> Iterator[object]:
    """A pool of one: the probe runs right after its attack, on the same container."""
    from sandbox.docker_pool import DockerSandbox

    sb = DockerSandbox(pool_size=1)
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.docker
class TestCleanSlateAfterHostilePrograms:
    """Every attack on the wipe ends with a clean slate for the very next program."""

    ATTACKS: tuple[tuple[str, str], ...] = (
        (
            "2000 nested directories in cwd",
            "import os\nfd = os.open('.', os.O_RDONLY)\nfor _ in range(2000):\n"
            "    os.mkdir('d', dir_fd=fd)\n    n = os.open('d', os.O_RDONLY, dir_fd=fd)\n"
            "    os.close(fd)\n    fd = n\nopen(f'/proc/self/fd/{fd}/x', 'w').write('1')\n",
        ),
        (
            "1500 nested directories under /tmp",
            "import os\nos.mkdir('/tmp/deep')\nfd = os.open('/tmp/deep', os.O_RDONLY)\n"
            "for _ in range(1500):\n    os.mkdir('d', dir_fd=fd)\n"
            "    n = os.open('d', os.O_RDONLY, dir_fd=fd)\n    os.close(fd)\n    fd = n\n",
        ),
        (
            "path beyond PATH_MAX with read-only dirs",
            "import os\nfd = os.open('/dev/shm', os.O_RDONLY)\nfor _ in range(30):\n"
            "    os.mkdir('n' * 250, dir_fd=fd)\n"
            "    n = os.open('n' * 250, os.O_RDONLY, dir_fd=fd)\n    os.fchmod(fd, 0o500)\n"
            "    os.close(fd)\n    fd = n\nos.mkdir('z', 0, dir_fd=fd)\n",
        ),
        (
            "files left in /tmp and /dev/shm",
            "open('/tmp/left', 'w').write('secret')\nopen('/dev/shm/left', 'w').write('s')\n"
            "import os\nos.symlink('/etc', '/tmp/link')\n",
        ),
        (
            "hard-link flood",
            "import os\nopen('/tmp/b', 'w').close()\ni = 0\nwhile True:\n"
            "    os.link('/tmp/b', '/tmp/' + str(i).rjust(200, 'h'))\n    i += 1\n",
        ),
        (
            "inode flood with long names",
            "i = 0\nwhile True:\n    open('/tmp/' + str(i).rjust(250, 'f'), 'w').close()\n"
            "    i += 1\n",
        ),
    )
    PROBE = (
        "import os\nleft = os.listdir('/tmp') + os.listdir('/dev/shm') + os.listdir('.')\n"
        "assert left == ['w'] or left == [], left\n"
        "st = os.statvfs('/tmp')\nassert st.f_files - st.f_ffree < 16, st\n"
        "print('clean')\n"
    )

    def test_attacks(self, single: object) -> None:
        from sandbox.docker_pool import DockerSandbox

        assert isinstance(single, DockerSandbox)
        progs: list[Program] = []
        for name, src in self.ATTACKS:
            progs += [Program(src, id=name), Program(self.PROBE, id=f"probe after {name}")]
        results = single.run(progs, timeout_s=10)
        for attack, probe in zip(results[::2], results[1::2], strict=True):
            assert attack.status in (ExecStatus.PASSED, ExecStatus.FAILED), (
                attack.program_id,
                attack.detail,
            )
            assert attack.attempts == 1, (attack.program_id, attack.detail)
            assert probe.status is ExecStatus.PASSED, (probe.program_id, probe.stderr[-400:])
        # the floods end as the program's own failure (ENOSPC at the nr_inodes cap)
        assert results[8].status is ExecStatus.FAILED and results[10].status is ExecStatus.FAILED


@pytest.mark.docker
class TestOomKillerPicksPrograms:
    def test_programs_run_at_oom_score_adj_1000_and_the_controller_at_0(
        self, docker_sandbox: object
    ) -> None:
        from sandbox.docker_pool import DockerSandbox

        assert isinstance(docker_sandbox, DockerSandbox)
        probe = (
            "import os\n"
            "print(open('/proc/self/oom_score_adj').read().strip(),"
            " open('/proc/1/oom_score_adj').read().strip())\n"
        )
        results = docker_sandbox.run([Program(probe) for _ in range(4)], timeout_s=10)
        assert all(r.stdout.split() == ["1000", "0"] for r in results), [
            (r.stdout, r.stderr[-200:]) for r in results
        ]

    def test_a_cgroup_oom_kills_program_processes_never_the_driver(self, docker_image: str) -> None:
        """Three children of one program, 90 MiB each, overrun a 128 + 96 MiB cgroup
        (each stays under its own RLIMIT_AS): the kernel OOM killer must pick program
        processes (oom_score_adj 1000), so the program itself sees its children
        SIGKILLed, its result is its own, and the same container runs the next one."""
        from sandbox.docker_pool import DockerSandbox

        hog = (
            "import os, time\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n"
            "    if pid == 0:\n        b = bytearray(90 << 20)\n        time.sleep(3)\n"
            "        os._exit(0)\n    kids.append(pid)\n"
            "killed = [os.waitpid(p, 0)[1] & 0x7F == 9 for p in kids]\n"
            "print('children killed:', sum(killed))\nraise SystemExit(3 if any(killed) else 0)\n"
        )
        with DockerSandbox(pool_size=1, memory_mb=128) as sb:
            before = sb.container_ids()
            results = sb.run([Program(hog), Program("print('next')")], timeout_s=40, memory_mb=128)
            assert sb.container_ids() == before  # the driver survived: same container
        assert results[0].status is ExecStatus.FAILED, (results[0].detail, results[0].stdout)
        assert "children killed: " in results[0].stdout and results[0].attempts == 1
        assert results[1].status is ExecStatus.PASSED and results[1].attempts == 1


@pytest.mark.docker
class TestInnocentsSurviveLostWorkers:
    """Two culprits in one batch each take their worker down; innocents are re-run."""

    def test_two_culprits_in_one_batch(self, docker_image: str) -> None:
        from sandbox.docker_pool import DockerSandbox, docker_client

        api = docker_client().api
        culprit = "import os\nos.execv('/bin/sleep', ['sleep', '77'])\n"
        progs = [Program(f"print({i})", id=f"i{i}") for i in range(30)]
        progs.insert(5, Program(culprit, id="culprit-a"))
        progs.insert(12, Program(culprit, id="culprit-b"))
        stop = threading.Event()
        kills = [0]

        def killer(sb: DockerSandbox) -> None:
            """Stands in for a program that kills its controller: kill the container
            whenever a culprit is running in it."""
            while not stop.is_set():
                for cid in sb.container_ids():
                    with contextlib.suppress(Exception):
                        procs = api.top(cid)["Processes"] or []
                        if any("sleep 77" in " ".join(p) for p in procs):
                            api.kill(cid)
                            kills[0] += 1
                time.sleep(0.05)

        with DockerSandbox(pool_size=1) as sb:
            t = threading.Thread(target=killer, args=(sb,), daemon=True)
            t.start()
            try:
                results = sb.run(progs, timeout_s=10)
            finally:
                stop.set()
                t.join()
        by_id = {r.program_id: r for r in results}
        for cid in ("culprit-a", "culprit-b"):
            assert by_id[cid].status is ExecStatus.SANDBOX_ERROR, by_id[cid].detail
            assert "alone" in by_id[cid].detail
        innocents = [r for r in results if r.program_id.startswith("i")]
        assert all(r.status is ExecStatus.PASSED for r in innocents), [
            (r.program_id, r.status, r.detail) for r in innocents if not r.passed
        ]
        assert [r.stdout for r in innocents] == [f"{i}\n" for i in range(30)]
        assert any(r.attempts >= 2 for r in innocents) and kills[0] >= 2
