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
    progs = [Program(f"print({i})\nassert {i % 2} == 0") for i in range(30)]
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
        parent = open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()
        role = open(f'/proc/{os.getppid()}/cmdline', 'rb').read().split(b'\\0')[4].decode()
        print(os.getuid(), os.getgid(), role, parent[1])
        print(caps)
        print(sorted(os.listdir('/sys/class/net')))
        """
    )
    r = docker_sandbox.run_one(src, timeout_s=10)
    assert r.status is ExecStatus.PASSED, r.stderr
    ids, caps, nets = r.stdout.splitlines()
    # forked by the driver's fork server, whose parent is the controller, PID 1 (namespace init)
    assert ids == "65534 65534 zygote 1"
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
        "zygote = open(f'/proc/{os.getppid()}/cmdline', 'rb').read().split(b'\\0')[4]\n"
        "print(sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getpid(), "
        "os.getppid(), zygote.decode(), os.listdir('/dev/shm'))"
    )
    t0 = time.monotonic()
    r1, r2 = single.run([Program(hostile), Program(probe)], timeout_s=1.0)
    assert r1.status is ExecStatus.TIMEOUT
    assert time.monotonic() - t0 < 8
    pids, rest = r2.stdout.split("] ", 1)
    mine, parent, role = rest.split()[:3]
    assert role == "zygote", r2.stdout  # the parent is the driver's fork server
    # only the driver (controller = PID 1, fork server) and the probe itself
    assert sorted(eval(pids + "]")) == sorted(["1", parent, mine]), r2.stdout
    assert "beat" not in rest


def test_program_that_kills_the_fork_server_still_gets_its_own_result(
    single: DockerSandbox,
) -> None:
    """The fork server (zygote) runs as the same uid, so a program can kill or stop it.

    The controller (PID 1) then adopts the orphaned program, finishes it with its own
    exit status or deadline, cleans up and starts a new fork server: no result is lost,
    wrong or blamed on the next program.
    """
    kill = "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(0.2)\n"
    stop = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nraise SystemExit(3)\n"
    hang = "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(60)\n"
    ppid = "import os; print(os.getppid())"
    progs = [ppid, kill + "print('ok')", ppid, stop, ppid, hang, ppid]
    t0 = time.monotonic()
    res = single.run([Program(p) for p in progs], timeout_s=2.0)
    assert time.monotonic() - t0 < 30
    z0, killed, z1, stopped, z2, hung, z3 = res
    assert killed.status is ExecStatus.PASSED and killed.stdout == "ok\n", killed
    assert stopped.status is ExecStatus.FAILED and stopped.exit_code == 3, stopped
    assert hung.status is ExecStatus.TIMEOUT, hung
    zygotes = [int(r.stdout) for r in (z0, z1, z2, z3)]
    assert all(r.status is ExecStatus.PASSED for r in (z0, z1, z2, z3))
    assert len(set(zygotes)) == 4  # a fresh fork server after each takeover
    assert all(r.attempts == 1 for r in res)  # handled in the container, no retries


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
        (engine,) = sb._engines  # the pool's only engine now answers nothing
        monkeypatch.setattr(engine, "api", dead.api)
        monkeypatch.setattr(engine, "client", dead)
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
    # what the dead owner leaves on the host: two empty socket directories with neutral
    # names and a marker file naming each, which `harness sandbox prune` removes
    import tempfile
    from pathlib import Path

    from sandbox.cli import _prune_socket_dirs
    from sandbox.docker_pool import SOCKET_DIR_PREFIX

    mine = list(Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}{proc.pid}-*"))
    from sandbox.docker_pool import _local_engine

    assert len(mine) == (2 if _local_engine() else 0)  # socket transport only
    dirs = [m.with_name(m.name[len(SOCKET_DIR_PREFIX) :].partition("-")[2]) for m in mine]
    assert all(m.is_file() for m in mine) and all(not any(d.iterdir()) for d in dirs)
    assert all(str(proc.pid) not in d.name and "gate-harness" not in d.name for d in dirs)
    _prune_socket_dirs(all_owners=False)
    assert not any(p.exists() for p in mine + dirs)


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


def test_socket_transport_is_a_one_shot_read_only_bind(docker_sandbox: DockerSandbox) -> None:
    """Local engines: the driver talks over a unix socket in a host dir bind-mounted read-only.

    The host accepted one connection (checked to come from the container's PID 1) and
    removed the socket before any program ran: programs see an unlistable, empty mount
    and cannot connect to anything.
    """
    assert docker_sandbox.transport == "socket"
    assert docker_sandbox.describe()["transport"] == "socket"
    api = docker_client().api
    for cid in docker_sandbox.container_ids():
        binds = api.inspect_container(cid)["HostConfig"]["Binds"]
        assert len(binds) == 1 and binds[0].endswith(":/run/gate-harness:ro"), binds
        host_dir = binds[0].split(":")[0]
        assert os.listdir(host_dir) == []  # socket file already removed on the host
    probe = textwrap.dedent(
        """
        import os, socket
        try:
            os.listdir('/run/gate-harness')
        except OSError as exc:
            print('listing blocked', exc.errno)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect('/run/gate-harness/s')
        except OSError as exc:
            print('connect blocked', exc.errno)
        else:
            print('CONNECTED')
        try:
            open('/run/gate-harness/x', 'w')
        except OSError as exc:
            print('write blocked', exc.errno)
        """
    )
    r = docker_sandbox.run_one(probe, timeout_s=10)
    assert r.status is ExecStatus.PASSED, r.stderr
    assert "CONNECTED" not in r.stdout
    assert r.stdout.count("blocked") == 3, r.stdout


def test_attach_transport_still_works_for_remote_engines(docker_image: str) -> None:
    """transport='attach' (chosen automatically for tcp:// or ssh:// DOCKER_HOST) runs the
    same driver over the container's attached stdin/stdout through the engine."""
    with DockerSandbox(pool_size=1, transport="attach") as sb:
        assert isinstance(sb, DockerSandbox) and sb.transport == "attach"
        res = sb.run(
            [Program("print('hi')"), Program("import time; time.sleep(30)"), Program("1/0")],
            timeout_s=1.0,
        )
    assert [r.status for r in res] == [ExecStatus.PASSED, ExecStatus.TIMEOUT, ExecStatus.FAILED]
    assert res[0].stdout == "hi\n"


def test_transport_choice_is_validated(docker_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SandboxError, match="transport='bogus' is invalid"):
        DockerSandbox(transport="bogus")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(SandboxError, match="needs a local engine"):
        DockerSandbox(transport="socket")
