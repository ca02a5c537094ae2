"""DockerSandbox over two Docker engines on this machine, one stopped mid-batch.

The second engine is a separate ``dockerd`` (own socket, data root, exec root,
pidfile; ``scripts/docker2.sh``), started by ``.ci/run`` and by the fixture if
it is down.  The default daemon is shared by everyone on the machine and is
never stopped: only the second engine is, through its own pidfile, and the
fixture starts it again afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from harness.errors import SandboxUnavailable
from sandbox.base import ExecStatus, Program
from sandbox.docker_pool import LABEL, DockerSandbox, docker_hosts

pytestmark = pytest.mark.docker

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "docker2.sh"
DEFAULT = "unix:///var/run/docker.sock"


def _docker2(action: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        raise SandboxUnavailable(f"scripts/docker2.sh {action} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@pytest.fixture
def second_engine(docker_image: str) -> Iterator[str]:
    """The second engine's DOCKER_HOST (started if down; started again after the test).

    Held under a file lock: one test stops the engine, and xdist workers must not use
    it meanwhile (these tests run one at a time, whatever the distribution mode).
    """
    with FileLock(str(Path(tempfile.gettempdir()) / "gate-harness-docker2.lock")):
        try:
            host = _docker2("start")
        except SandboxUnavailable as exc:
            if os.environ.get("HARNESS_ALLOW_NO_DOCKER") == "1":
                pytest.skip(f"HARNESS_ALLOW_NO_DOCKER=1 and {exc}")
            pytest.fail(str(exc), pytrace=False)
        yield host
        _docker2("start")  # a test that stopped it leaves it running for the next one


def test_pool_spreads_by_capacity_and_hardens_every_engine(second_engine: str) -> None:
    sb = DockerSandbox(pool_size=4, hosts=[DEFAULT, second_engine])
    try:
        engines = sb.engines()
        assert [e["host"] for e in engines] == [DEFAULT, second_engine]
        # both engines report the same CPUs on this machine: two workers each
        assert [e["workers"] for e in engines] == [2, 2]
        assert sb.describe()["engine"] == f"{DEFAULT}, {second_engine}"
        for w in sb.pool.workers():
            channel = w.channel
            info = channel.api.inspect_container(channel.cid)  # type: ignore[attr-defined]
            hc, cfg = info["HostConfig"], info["Config"]
            assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
            assert hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
            assert hc["PidsLimit"] > 0 and hc["Memory"] > 0 and hc["MemorySwap"] == hc["Memory"]
            assert cfg["User"] == "65534:65534" and cfg["Labels"][LABEL] == "1"
            assert info["Image"] == sb.image_id  # the same image bytes on every engine
        src = (
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), 1)\n"
            "except OSError:\n    print('no network')\n"
        )
        results = sb.run([Program(src) for _ in range(8)], timeout_s=10)
        assert {r.status for r in results} == {ExecStatus.PASSED}
        assert {r.stdout.strip() for r in results} == {"no network"}
        assert sb.health() == []
    finally:
        sb.close()


def test_engine_stopped_mid_batch_loses_and_duplicates_nothing(second_engine: str) -> None:
    sb = DockerSandbox(pool_size=4, hosts=[DEFAULT, second_engine])
    n = 96  # 0.5 s each on 4 workers: ~12 s, the engine stops after the first 8 results
    seen = [0]
    stopper = threading.Thread(target=_docker2, args=("stop",), daemon=True)

    def hook(_raw: dict[str, object]) -> None:  # called per driver result, in pool threads
        seen[0] += 1
        if seen[0] == 8:
            stopper.start()

    sb.pool.raw_hook = hook
    try:
        programs = [Program(f"import time\ntime.sleep(0.5)\nprint({i})") for i in range(n)]
        results = sb.run(programs, timeout_s=20)
        stopper.join(60)
        assert seen[0] >= n and not stopper.is_alive()
        assert len(results) == n
        assert [r.status for r in results] == [ExecStatus.PASSED] * n, [
            (r.status, r.detail) for r in results if r.status is not ExecStatus.PASSED
        ]
        assert [r.stdout.strip() for r in results] == [str(i) for i in range(n)]
        rerun = [r for r in results if r.attempts > 1]
        assert rerun, "the stopped engine had programs in flight; they must have re-run"
        # the surviving engine keeps serving; the stopped one is reported, none of its workers
        more = sb.run([Program("print('after')") for _ in range(40)], timeout_s=10)
        assert {r.status for r in more} == {ExecStatus.PASSED}
        engines = {e["host"]: e for e in sb.engines()}
        assert engines[second_engine]["alive"] is False and engines[second_engine]["workers"] == 0
        assert engines[DEFAULT]["alive"] is True and engines[DEFAULT]["workers"] >= 1
        assert f"engine {second_engine} is unreachable" in sb.health()
    finally:
        sb.close()


def test_hosts_setting_and_image_mismatch_are_explained(
    second_engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.settings import reset_settings

    monkeypatch.setenv("HARNESS_DOCKER_HOSTS", f"{DEFAULT}, {second_engine},{DEFAULT}")
    reset_settings()
    assert docker_hosts() == [DEFAULT, second_engine]
    assert docker_hosts(["unix:///x.sock"]) == ["unix:///x.sock"]
    with pytest.raises(SandboxUnavailable, match=rf"not found on the engine at {second_engine}"):
        DockerSandbox(image="gate-harness-sandbox:does-not-exist", hosts=[second_engine, DEFAULT])
