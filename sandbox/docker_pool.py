"""DockerSandbox: a warm pool of hardened containers, one driver (PID 1) in each.

Each container runs :mod:`sandbox.driver` as its init process (the controller,
which spawns the driver's fork server inside the container), fed over the
container's attached stdin (one long-lived hijacked stream per container, no
``docker exec`` per program). Containers are created with every isolation
knob Docker offers without a custom seccomp profile: no network, read-only
root, size-capped ``noexec`` tmpfs for ``/tmp``, non-root user, all
capabilities dropped, ``no-new-privileges``, pids/memory(+swap)/CPU limits
and private IPC with SysV IPC disabled.

Lifecycle safety: containers are labelled (``gate-harness.sandbox=1`` plus
owner pid / xdist worker) and named uniquely per process and worker; they are
``auto_remove`` containers whose driver exits when its stdin closes, so if the
host process dies — even by SIGKILL — the engine removes them; atexit and
SIGTERM/SIGHUP handlers remove them eagerly; ``harness sandbox prune`` removes
leftovers of dead owners.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import SandboxError, SandboxUnavailable

from ._io import DockerStreamReader, SocketLineReader, StderrTail
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

__all__ = [
    "DEFAULT_IMAGE",
    "LABEL",
    "DockerSandbox",
    "docker_client",
    "driver_digest",
    "hardening_config",
]

DEFAULT_IMAGE = "gate-harness-sandbox:latest"
LABEL = "gate-harness.sandbox"
DRIVER_SOURCE = Path(__file__).with_name("driver.py").read_text(encoding="utf-8")
SANDBOX_UID = "65534:65534"
DRIVER_MEMORY_MB = 96
#: inode caps of the container's tmpfs mounts (``nr_inodes``)
TMP_INODES = 16384
SHM_INODES = 1024

_FIX_DAEMON = (
    "start a Docker daemon and wait until `docker info` answers (on these VMs: "
    "`dockerd --bridge=none --iptables=false &`), or set DOCKER_HOST to a reachable engine; "
    "to run without Docker pass --sandbox local (weaker isolation, labelled in evidence), "
    "or set HARNESS_ALLOW_NO_DOCKER=1 to skip Docker tests"
)

_LIVE: dict[str, Any] = {}  # container id -> APIClient, for exit-time cleanup
_LIVE_LOCK = threading.Lock()


def driver_digest() -> str:
    """sha256 of the driver source shipped into containers (recorded in evidence)."""
    return hashlib.sha256(DRIVER_SOURCE.encode("utf-8")).hexdigest()


def _engine_name() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_client(*, timeout: float = 60.0) -> Any:
    """A ``docker.DockerClient`` honouring DOCKER_HOST, or SandboxUnavailable naming the fix."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise SandboxUnavailable(
            f"the `docker` Python package is missing ({exc}); pip install docker"
        ) from exc
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(
            f"Docker daemon not reachable at {_engine_name()} ({type(exc).__name__}: {exc}); "
            f"fix: {_FIX_DAEMON}"
        ) from exc
    return client


def hardening_config(
    *, memory_mb: int, cpus: float, pids_limit: int, tmpfs_mb: int
) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_host_config`` (explained in docs/sandbox.md)."""
    mem = (memory_mb + DRIVER_MEMORY_MB) * 1024 * 1024
    return {
        "network_mode": "none",
        "read_only": True,
        # inode caps: files count against the memory cgroup as kernel memory (inodes,
        # dentries) that no process's RSS shows, so their number is bounded here
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,noexec,size={tmpfs_mb}m,nr_inodes={TMP_INODES},mode=1777",
            "/dev/shm": f"rw,nosuid,nodev,noexec,size=8m,nr_inodes={SHM_INODES},mode=1777",
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": pids_limit,
        "mem_limit": mem,
        "memswap_limit": mem,
        "nano_cpus": int(cpus * 1e9),
        "ipc_mode": "private",
        "sysctls": {"kernel.msgmni": "0", "kernel.shm_rmid_forced": "1", "kernel.sem": "0 0 0 0"},
        "ulimits": [
            {"Name": "core", "Soft": 0, "Hard": 0},
            {"Name": "nofile", "Soft": 1024, "Hard": 1024},
        ],
        "auto_remove": True,
        "init": False,
    }


def _remove(api: Any, cid: str) -> None:
    # already gone (auto_remove) or engine down: nothing to do, prune handles leftovers
    with contextlib.suppress(Exception):
        api.remove_container(cid, force=True)
    with _LIVE_LOCK:
        _LIVE.pop(cid, None)


def _remove_all_live() -> None:
    with _LIVE_LOCK:
        items = list(_LIVE.items())
    threads = [threading.Thread(target=_remove, args=(api, cid)) for cid, api in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)


_HANDLERS_INSTALLED = False


def _install_exit_handlers() -> None:
    """Remove containers at interpreter exit and on SIGTERM/SIGHUP (Ctrl-C exits via atexit)."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_remove_all_live)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)
        if previous not in (signal.SIG_DFL, None):
            continue  # someone else owns this signal; atexit + auto_remove still apply

        def handler(signum: int, frame: Any, _sig: int = sig) -> None:
            _remove_all_live()
            signal.signal(_sig, signal.SIG_DFL)
            os.kill(os.getpid(), _sig)

        signal.signal(sig, handler)


#: where the host's per-container socket directory appears inside the container (read-only)
SOCKET_DIR = "/run/gate-harness"
TRANSPORTS = ("auto", "socket", "attach")
#: marker files ``<tmp>/gate-harness-sbx-<owner pid>-<random>`` name the neutral socket
#: directories ``<tmp>/<random>`` of their owner (see _neutral_socket_dir)
SOCKET_DIR_PREFIX = "gate-harness-sbx-"


def _neutral_socket_dir(owner: str) -> str:
    """A host directory for one worker's socket whose path names nothing.

    The container sees the bind source in /proc/self/mountinfo, so its name is random
    (``<tmp>/<random>``); an empty marker file ``<tmp>/gate-harness-sbx-<owner pid>-<random>``
    beside it lets ``harness sandbox prune`` find directories of dead owners.
    """
    path = tempfile.mkdtemp(prefix="")
    Path(tempfile.gettempdir(), f"{SOCKET_DIR_PREFIX}{owner}-{os.path.basename(path)}").touch()
    return path


def _remove_socket_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    for marker in Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*-{Path(path).name}"):
        with contextlib.suppress(OSError):
            marker.unlink()


def _local_engine() -> bool:
    """True when the engine runs on this machine (a unix socket), so bind mounts work."""
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


class _DockerChannel(Channel):
    """The container's attached stdin/stdout (through the engine; works with remote engines)."""

    def __init__(self, api: Any, cid: str, sock: Any) -> None:
        self.api = api
        self.cid = cid
        self.sockio = sock
        self.sock: socket.socket = sock._sock
        self.tail = StderrTail()
        self.reader = DockerStreamReader(self.sock, self.tail)
        self._send_lock = threading.Lock()
        self._killed = False

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def read_line(self, deadline: float) -> bytes:
        return self.reader.read_line(deadline)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        try:
            self.sockio.close()
            self.sock.close()
        except OSError:
            pass
        _remove(self.api, self.cid)

    def diagnostics(self) -> str:
        return self.tail.text()


class _SocketChannel(Channel):
    """A unix socket straight to the driver, bypassing dockerd and containerd-shim.

    The driver connected to a listening socket in a host directory that is
    bind-mounted read-only into this container only; the host accepted exactly one
    connection, checked with SO_PEERCRED that it came from the container's PID 1, then
    closed the listener and removed the socket file — before any program ran.
    """

    def __init__(self, api: Any, cid: str, sock: socket.socket, tmpdir: str) -> None:
        self.api = api
        self.cid = cid
        self.sock = sock
        self.tmpdir = tmpdir
        self.reader = SocketLineReader(sock)
        self._send_lock = threading.Lock()
        self._killed = False

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def read_line(self, deadline: float) -> bytes:
        return self.reader.read_line(deadline)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        _remove(self.api, self.cid)
        _remove_socket_dir(self.tmpdir)

    def diagnostics(self) -> str:
        try:
            out = self.api.logs(self.cid, stdout=False, stderr=True, tail=50)
        except Exception:
            return ""
        return bytes(out).decode("utf-8", "replace")


class DockerSandbox(Sandbox):
    """Warm pool of hardened containers; the isolated sandbox (``sandbox_kind="docker"``)."""

    kind = "docker"

    def __init__(
        self,
        *,
        image: str = DEFAULT_IMAGE,
        pool_size: int | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        cpus: float = 1.0,
        pids_limit: int = 128,
        tmpfs_mb: int = 64,
        recycle_after: int = 5000,
        fsize_mb: int = 16,
        nofile: int = 256,
        window: int = 12,
        transport: str = "auto",
        max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    ) -> None:
        if transport not in TRANSPORTS:
            raise SandboxError(f"transport={transport!r} is invalid: pass one of {TRANSPORTS}")
        if transport == "socket" and not _local_engine():
            raise SandboxError(
                f"transport='socket' needs a local engine (DOCKER_HOST={_engine_name()} is "
                "remote, so a host directory cannot be bind-mounted); fix: transport='attach' "
                "or 'auto'"
            )
        #: "socket": unix socket in a bind-mounted host directory (local engines);
        #: "attach": the container's attached stdin/stdout through the engine (any engine)
        self.transport = "socket" if transport == "auto" and _local_engine() else transport
        if self.transport == "auto":
            self.transport = "attach"
        self._transport_requested = transport
        self._socket_proven = False  # a socket worker connected once: failures are real
        self._client = docker_client()
        self._api = self._client.api
        try:
            info = self._api.inspect_image(image)
        except Exception as exc:
            raise SandboxUnavailable(
                f"sandbox image {image!r} not found on the engine at {_engine_name()} ({exc}); "
                "fix: run `harness sandbox build` (offline debootstrap build) or build "
                f"sandbox/Dockerfile and tag it {image!r}"
            ) from exc
        self.image = image
        self._image_id: str = info["Id"]
        self._memory_mb = memory_mb
        self._fsize_mb = fsize_mb
        self._nofile = nofile
        self._size = pool_size or default_pool_size()
        self._hardening = hardening_config(
            memory_mb=memory_mb, cpus=cpus, pids_limit=pids_limit, tmpfs_mb=tmpfs_mb
        )
        self._host_config = self._api.create_host_config(**self._hardening)
        self._owner = str(os.getpid())
        self._worker_id = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self._token = secrets.token_hex(3)
        _install_exit_handlers()
        self._pool = WorkerPool(
            self._make_worker,
            size=self._size,
            kind=self.kind,
            image_id=lambda: self._image_id,
            recycle_after=recycle_after,
            window=window,
            max_source_bytes=max_source_bytes,
        )
        self._closed = False
        self._pool.start()
        self._finalizer = weakref.finalize(self, self._pool.close)

    # ---- workers --------------------------------------------------------------------------
    def _make_worker(self, serial: int) -> Worker:
        name = f"gate-harness-sbx-{self._worker_id}-{self._owner}-{self._token}-{serial}"
        labels = {
            LABEL: "1",
            f"{LABEL}.owner-pid": self._owner,
            f"{LABEL}.owner-host": socket.gethostname(),
            f"{LABEL}.worker": self._worker_id,
            f"{LABEL}.driver": driver_digest()[:16],
        }
        if self.transport == "socket":
            try:
                return self._make_socket_worker(name, labels)
            except SandboxError:
                if self._transport_requested != "auto" or self._socket_proven:
                    raise
                # auto on an engine whose containers cannot see our directory: fall back
                self.transport = "attach"
        try:
            created = self._api.create_container(
                self.image,
                ["python3", "-I", "-c", DRIVER_SOURCE, "container"],
                name=name,
                user=SANDBOX_UID,
                labels=labels,
                working_dir="/tmp",
                environment={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
                hostname="sandbox",
                stdin_open=True,
                detach=False,  # with stdin_open → StdinOnce: closing our stream stops the driver
                host_config=self._host_config,
            )
            cid = created["Id"]
            with _LIVE_LOCK:
                _LIVE[cid] = self._api
            sock = self._api.attach_socket(
                cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._api.start(cid)
        except Exception as exc:
            self._raise_engine_error(exc, f"starting sandbox container {name}")
        return Worker(_DockerChannel(self._api, cid, sock), name=name)

    def _accept_driver(self, listener: socket.socket, cid: str) -> socket.socket:
        """The driver's connection; fail fast if the container exits without connecting."""
        deadline = time.monotonic() + 30.0
        listener.settimeout(0.25)
        while True:
            try:
                conn, _ = listener.accept()
                return conn
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise SandboxError("the driver did not connect within 30 s") from None
                try:
                    running = self._api.inspect_container(cid)["State"].get("Running")
                except Exception:
                    running = False
                if not running:
                    raise SandboxError(
                        "the container exited before its driver connected (engine in another "
                        "mount namespace, e.g. rootless or remote? use transport='attach')"
                    ) from None

    def _make_socket_worker(self, name: str, labels: dict[str, str]) -> Worker:
        """Start a container whose driver talks to us over a unix socket (see _SocketChannel)."""
        tmpdir = _neutral_socket_dir(self._owner)
        cid = ""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dir_fd = os.open(tmpdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chmod(tmpdir, 0o711)  # the container's uid must reach the socket, not list it
            # bound through a descriptor path: the address the container can read in
            # /proc/net/unix is "/proc/self/fd/<n>/s", which names nothing on the host
            listener.bind(f"/proc/self/fd/{dir_fd}/s")
            os.chmod("s", 0o666, dir_fd=dir_fd)
            listener.listen(1)
            host_config = self._api.create_host_config(
                **self._hardening, binds={tmpdir: {"bind": SOCKET_DIR, "mode": "ro"}}
            )
            created = self._api.create_container(
                self.image,
                ["python3", "-I", "-c", DRIVER_SOURCE, "container"],
                name=name,
                user=SANDBOX_UID,
                labels=labels,
                working_dir="/tmp",
                environment={
                    "LANG": "C.UTF-8",
                    "PATH": "/usr/bin:/bin",
                    "GATE_HARNESS_SOCKET": f"{SOCKET_DIR}/s",
                },
                hostname="sandbox",
                host_config=host_config,
            )
            cid = created["Id"]
            with _LIVE_LOCK:
                _LIVE[cid] = self._api
            self._api.start(cid)
            init_pid = int(self._api.inspect_container(cid)["State"]["Pid"])
        except Exception as exc:
            listener.close()
            os.close(dir_fd)
            _remove_socket_dir(tmpdir)
            if cid:
                _remove(self._api, cid)
            self._raise_engine_error(exc, f"starting sandbox container {name}")
        try:
            conn = self._accept_driver(listener, cid)
            pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, 17, 12))
            if pid != init_pid:  # 17 = SO_PEERCRED; only the container's PID 1 may connect
                conn.close()
                raise SandboxError(
                    f"unexpected connection to the sandbox socket of {name} from pid {pid} "
                    f"(the container's init is {init_pid}); refusing it"
                )
            conn.settimeout(None)
        except (OSError, SandboxError) as exc:
            _remove(self._api, cid)
            _remove_socket_dir(tmpdir)
            raise SandboxError(f"sandbox worker {name} did not connect: {exc}") from exc
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink("s", dir_fd=dir_fd)  # nothing else can connect any more
            os.close(dir_fd)
        self._socket_proven = True
        return Worker(_SocketChannel(self._api, cid, conn, tmpdir), name=name)

    def _raise_engine_error(self, exc: Exception, what: str) -> None:
        try:
            self._client.ping()
        except Exception as ping_exc:
            raise SandboxUnavailable(
                f"Docker daemon at {_engine_name()} became unreachable while {what} "
                f"({type(ping_exc).__name__}: {ping_exc}); fix: {_FIX_DAEMON}"
            ) from exc
        raise SandboxError(f"Docker engine refused {what}: {exc}") from exc

    # ---- Sandbox API ----------------------------------------------------------------------
    @property
    def parallelism(self) -> int:
        return self._size

    @property
    def image_id(self) -> str:
        return self._image_id

    @property
    def pool(self) -> WorkerPool:
        return self._pool

    def image_labels(self) -> dict[str, str]:
        """The image's labels (which tools it carries, e.g. ``gate-harness.sandbox.ast-grep``)."""
        info = self._api.inspect_image(self._image_id)
        return dict((info.get("Config") or {}).get("Labels") or {})

    def container_ids(self) -> list[str]:
        return [
            w.channel.cid
            for w in self._pool.workers()
            if isinstance(w.channel, _DockerChannel | _SocketChannel)
        ]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            image=self.image,
            driver_sha256=driver_digest(),
            engine=_engine_name(),
            transport=self.transport,
            isolation="docker: no network, read-only root, non-root, cap-drop ALL, "
            "no-new-privileges, pids/memory/cpu limits, tmpfs /tmp",
        )
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
        if self._closed:
            raise SandboxError("this DockerSandbox is closed; create a new one")
        if memory_mb > self._memory_mb:
            raise SandboxError(
                f"memory_mb={memory_mb} exceeds the pool's container limit of "
                f"{self._memory_mb} MiB; "
                f"fix: create DockerSandbox(memory_mb={memory_mb}) or lower memory_mb"
            )
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
        """Problems with the pool: dead containers or stray containers of this sandbox."""
        problems: list[str] = []
        ids = self.container_ids()
        for cid in ids:
            try:
                state = self._api.inspect_container(cid)["State"]
            except Exception as exc:
                problems.append(f"container {cid[:12]} vanished: {exc}")
                continue
            if not state.get("Running"):
                problems.append(f"container {cid[:12]} not running: {state.get('Status')}")
        mine = self._api.containers(
            all=True, filters={"label": [f"{LABEL}.owner-pid={self._owner}", f"{LABEL}=1"]}
        )
        strays = [
            c["Id"][:12]
            for c in mine
            if c["Names"][0].lstrip("/").split("-")[-2] == self._token and c["Id"] not in ids
        ]
        if strays:
            problems.append(f"stray containers of this pool: {strays}")
        return problems

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._finalizer()
