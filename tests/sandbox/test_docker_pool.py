"""DockerSandbox against the real daemon: hardening, battery, faults, lifecycle."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from harness.errors import SandboxError, SandboxUnavailable
from sandbox.base import ExecStatus, Program
from sandbox.battery import hostile_cases, run_battery
from sandbox.docker_pool import LABEL, DockerSandbox, docker_client

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def single(docker_image: str) -> Iterator[DockerSandbox]:
    """A pool of one: programs run strictly in sequence on one container."""
    sb = DockerSandbox(pool_size=1)
    try:
        yield sb
    finally:
        sb.close()


def test_results_typed_in_order_with_image_id(
    docker_sandbox: DockerSandbox, docker_image: str
) -> None:
    progs = [Program(f"import sys\nprint({i})\nsys.exit({i % 2})") for i in range(30)]
    results = docker_sandbox.run(progs, timeout_s=10)
    assert [r.program_id for r in results] == [p.id for p in progs]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(30)]
    assert [r.status for r in results] == [ExecStatus.PASSED, ExecStatus.FAILED] * 15
    assert {r.image_id for r in results} == {docker_image}
    assert {r.sandbox_kind for r in results} == {"docker"}


def test_containers_are_hardened(docker_sandbox: DockerSandbox) -> None:
    api = docker_client().api
    for cid in docker_sandbox.container_ids():
        info = api.inspect_container(cid)
        hc, cfg = info["HostConfig"], info["Config"]
        assert hc["NetworkMode"] == "none"
        assert hc["ReadonlyRootfs"] is True
        assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd")
        assert "no-new-privileges" in hc["SecurityOpt"]
        assert hc["PidsLimit"] and hc["PidsLimit"] > 0
        assert hc["Memory"] > 0 and hc["MemorySwap"] == hc["Memory"]
        assert hc["NanoCpus"] > 0
        assert hc["Privileged"] is False
        assert "/tmp" in hc["Tmpfs"] and "noexec" in hc["Tmpfs"]["/tmp"]
        assert cfg["User"] == "65534:65534"
        assert cfg["Labels"][LABEL] == "1"
        assert cfg["Labels"][f"{LABEL}.owner-pid"] == str(os.getpid())
        assert cfg["Labels"][f"{LABEL}.worker"] == os.environ.get("PYTEST_XDIST_WORKER", "main")


def test_inside_view_is_unprivileged(docker_sandbox: DockerSandbox) -> None:
    src = textwrap.dedent(
        """
        import os
        status = open('/proc/self/status').read()
        caps = [l for l in status.splitlines() if l.startswith(('CapEff', 'CapPrm', 'NoNewPrivs'))]
        print(os.getuid(), os.getgid(), os.getppid())
        print(caps)
        print(sorted(os.listdir('/sys/class/net')))
        """
    )
    r = docker_sandbox.run_one(src, timeout_s=10)
    assert r.status is ExecStatus.PASSED, r.stderr
    ids, caps, nets = r.stdout.splitlines()
    assert ids == "65534 65534 1"  # driver is PID 1 (namespace init)
    assert "CapEff:\\t0000000000000000" in caps and "NoNewPrivs:\\t1" in caps
    assert nets == "['lo']"


def test_hostile_battery_docker(single: DockerSandbox) -> None:
    report = run_battery(single)
    assert report.ok, report.summary()
    assert len(report.cases) >= 30
    assert not single.health()


def test_battery_has_at_least_30_cases_for_docker() -> None:
    cases = hostile_cases("t", secret_path="/x", port=1)
    docker_cases = [c for c in cases if "docker" in c.kinds]
    assert len(docker_cases) >= 30
    assert len({c.name for c in cases}) == len(cases)


def test_output_cap(docker_sandbox: DockerSandbox) -> None:
    r = docker_sandbox.run_one(
        "import sys\nsys.stdout.write('o' * 300000)\nsys.stderr.write('e' * 300000)", timeout_s=10
    )
    assert r.status is ExecStatus.PASSED and r.truncated
    assert len(r.stdout) == 64 * 1024 and len(r.stderr) == 64 * 1024


def test_timeout_kills_grandchildren(single: DockerSandbox) -> None:
    hostile = textwrap.dedent(
        """
        import os, time, signal
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True:
                    open('/dev/shm/beat', 'w').write(str(time.time()))
                    time.sleep(0.01)
            time.sleep(3600)
        time.sleep(3600)
        """
    )
    probe = (
        "import os\n"
        "print(sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getpid(), "
        "os.listdir('/dev/shm'))"
    )
    t0 = time.monotonic()
    r1, r2 = single.run([Program(hostile), Program(probe)], timeout_s=1.0)
    assert r1.status is ExecStatus.TIMEOUT
    assert time.monotonic() - t0 < 8
    pids, mine, shm = r2.stdout.split("] ")[0] + "]", r2.stdout.split("] ")[1].split()[0], r2.stdout
    assert sorted(eval(pids)) == sorted(["1", mine]), r2.stdout  # only the driver and the probe
    assert "beat" not in shm


def test_container_killed_mid_batch_is_retried_once_no_loss(docker_image: str) -> None:
    api = docker_client().api
    with DockerSandbox(pool_size=2) as sb:
        progs = [Program(f"import time\ntime.sleep(0.05)\nprint({i})") for i in range(60)]
        victim = sb.container_ids()[0]

        def kill_soon() -> None:
            time.sleep(0.8)
            api.kill(victim)

        t = threading.Thread(target=kill_soon)
        t.start()
        results = sb.run(progs, timeout_s=10)
        t.join()
        assert [r.program_id for r in results] == [p.id for p in progs]
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(60)]
        assert all(r.status is ExecStatus.PASSED for r in results)
        assert any(r.attempts == 2 for r in results), (
            "the kill landed after the batch; test proved nothing"
        )
        assert sb.pool.retried >= 1 and victim not in sb.container_ids()
        assert not sb.health()


def test_program_lost_twice_gets_sandbox_error_not_dropped(docker_image: str) -> None:
    """A program whose container dies under it twice is reported, never silently dropped."""
    api = docker_client().api
    with DockerSandbox(pool_size=1) as sb:
        stop = threading.Event()

        def killer() -> None:
            seen: set[str] = set()
            while not stop.is_set():
                for cid in sb.container_ids():
                    if cid not in seen:
                        time.sleep(0.5)
                        seen.add(cid)
                        with contextlib.suppress(Exception):
                            api.kill(cid)
                time.sleep(0.05)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        try:
            (r,) = sb.run([Program("import time\ntime.sleep(30)")], timeout_s=60)
        finally:
            stop.set()
            t.join()
        assert r.status is ExecStatus.SANDBOX_ERROR and r.attempts == 2 and "lost twice" in r.detail


def test_unreachable_daemon_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/gate-harness-no-such-docker.sock")
    with pytest.raises(SandboxUnavailable) as info:
        DockerSandbox(pool_size=1)
    msg = str(info.value)
    assert "gate-harness-no-such-docker.sock" in msg and "fix:" in msg and "dockerd" in msg


def test_daemon_gone_mid_run_raises_sandbox_unavailable(
    docker_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daemon lost mid-run: the live container dies and the engine is unreachable for a new one.

    The real daemon is shared by everyone on this machine, so instead of stopping it the
    sandbox's client is pointed at a dead socket just before its container is killed.
    """
    api = docker_client().api
    sb = DockerSandbox(pool_size=1)
    try:
        victim = sb.container_ids()[0]
        import docker

        dead_url = "unix:///tmp/gate-harness-no-such-docker.sock"
        dead = docker.DockerClient(base_url=dead_url, version="1.41", timeout=2)
        monkeypatch.setattr(sb, "_api", dead.api)
        monkeypatch.setattr(sb, "_client", dead)
        threading.Timer(0.5, lambda: api.kill(victim)).start()
        with pytest.raises(SandboxUnavailable, match="fix:"):
            sb.run([Program("import time\ntime.sleep(5)")], timeout_s=20)
    finally:
        monkeypatch.undo()
        sb.close()


def test_memory_above_pool_limit_is_refused(docker_sandbox: DockerSandbox) -> None:
    with pytest.raises(SandboxError, match="exceeds the pool's container limit"):
        docker_sandbox.run_one("pass", memory_mb=10**6)


def test_missing_image_names_the_build_command(docker_image: str) -> None:
    with pytest.raises(SandboxUnavailable, match="harness sandbox build"):
        DockerSandbox(image="gate-harness-sandbox:does-not-exist")


def test_close_removes_containers(docker_image: str) -> None:
    api = docker_client().api
    sb = DockerSandbox(pool_size=2)
    ids = sb.container_ids()
    assert len(ids) == 2
    sb.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [c for c in api.containers(all=True) if c["Id"] in ids]
        if not left:
            break
        time.sleep(0.2)
    assert not left


def test_containers_vanish_when_owner_is_sigkilled(docker_image: str) -> None:
    """Dead-man switch: no atexit runs on SIGKILL, yet the engine removes the containers."""
    code = textwrap.dedent(
        """
        import os, sys, time
        from sandbox.docker_pool import DockerSandbox
        sb = DockerSandbox(pool_size=2)
        print(' '.join(sb.container_ids()), flush=True)
        time.sleep(3600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ids = proc.stdout.readline().split()
    assert len(ids) == 2
    proc.kill()
    proc.wait()
    api = docker_client().api
    deadline = time.monotonic() + 20
    left = ids
    while time.monotonic() < deadline and left:
        left = [c["Id"] for c in api.containers(all=True) if c["Id"] in ids]
        time.sleep(0.2)
    assert not left, "containers outlived their SIGKILLed owner"


def test_humaneval_canonical_solutions_all_pass(docker_sandbox: DockerSandbox) -> None:
    from sandbox.bench import humaneval_programs

    progs = humaneval_programs(copies=1)
    assert len(progs) == 164
    results = docker_sandbox.run(progs, timeout_s=20)
    bad = [
        (p.id, r.status.value, r.stderr[-200:])
        for p, r in zip(progs, results, strict=True)
        if not r.passed
    ]
    assert not bad


@pytest.mark.slow
def test_humaneval_820_programs_all_pass(docker_sandbox: DockerSandbox) -> None:
    from sandbox.bench import humaneval_programs

    progs = humaneval_programs(copies=5)
    results = docker_sandbox.run(progs, timeout_s=20)
    assert len(results) == 820 and all(r.passed for r in results)
