"""DockerSandbox: a warm pool of hardened containers, one driver (PID 1) in each.

Each container runs :mod:`sandbox.driver` as its init process (the controller,
which spawns the driver's fork server inside the container), fed over the
container's attached stdin (one long-lived hijacked stream per container, no
``docker exec`` per program). Containers are created with every isolation
knob Docker offers without a custom seccomp profile: no network, read-only
root, size-capped ``noexec`` tmpfs for ``/tmp``, non-root user, all
capabilities dropped, ``no-new-privileges``, pids/memory(+swap)/CPU limits
and private IPC with SysV IPC disabled.

Several engines: ``DockerSandbox(hosts=[...])`` (or ``HARNESS_DOCKER_HOSTS``,
comma-separated) spreads the warm pool over several Docker engines in
proportion to the CPUs each reports; every engine gets the same hardened
container config and must hold the same image id.  A worker whose engine stops
answering is replaced on another engine, and the programs it had in flight are
innocent (the engine, not a program, went away): they re-run elsewhere without
counting as lost, each still getting exactly one result.  When every engine is
gone the run stops with :class:`SandboxUnavailable`.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import SandboxError, SandboxUnavailable
from harness.settings import env_option

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
    return env_option("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_client(*, timeout: float = 60.0, host: str | None = None) -> Any:
    """A ``docker.DockerClient`` for ``host`` (default: DOCKER_HOST), or SandboxUnavailable
    naming the fix."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise SandboxUnavailable(
            f"the `docker` Python package is missing ({exc}); pip install docker"
        ) from exc
    try:
        if host is None:
            client = docker.from_env(timeout=int(timeout))
        else:
            client = docker.DockerClient(base_url=host, timeout=int(timeout))
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(
            f"Docker daemon not reachable at {host or _engine_name()} "
            f"({type(exc).__name__}: {exc}); fix: {_FIX_DAEMON}"
        ) from exc
    return client


def docker_hosts(hosts: Sequence[str] | None = None) -> list[str]:
    """The engines a sandbox uses: ``hosts``, else ``HARNESS_DOCKER_HOSTS`` (settings), else
    DOCKER_HOST (or the default socket)."""
    if hosts:
        return list(dict.fromkeys(hosts))
    from harness.settings import get_settings

    configured = get_settings().docker_hosts
    return list(configured) if configured else [_engine_name()]


@dataclass(eq=False)
class _Engine:
    """One Docker engine of the pool: its client, the CPUs it offers, whether it answers."""

    host: str
    client: Any
    api: Any
    capacity: int
    host_config: Any = None
    alive: bool = True
    starting: int = 0  # workers being started on it right now

    @property
    def local(self) -> bool:
        """A unix socket: the engine runs on this machine, so bind mounts work."""
        return self.host.startswith("unix://")

    def reachable(self) -> bool:
        """Does the engine still answer? (False marks it gone for good.)"""
        if self.alive:
            try:
                self.api.ping()
            except Exception:
                self.alive = False
        return self.alive


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


#: after a lost container on an engine that still answers: how long to watch the engine
#: (a stopping dockerd kills its containers and closes its API within about a second)
ENGINE_GRACE_S = 2.0


def _engine_lost(engine: _Engine | None, api: Any, cid: str) -> bool:
    """Did the worker's container die with its engine?  True once the engine stops answering.

    A container that is still running lost its channel for another reason (not the
    engine); one that is gone while the engine answers is watched for
    :data:`ENGINE_GRACE_S`, because a stopping engine kills containers before its API
    goes away.  Only this answer can make a loss innocent, and no program can stop
    an engine.
    """
    if engine is None:
        return False
    deadline = time.monotonic() + ENGINE_GRACE_S
    while engine.reachable():
        try:
            if api.inspect_container(cid)["State"].get("Running"):
                return False
        except Exception:
            pass  # removed (auto_remove) or the engine is going: watch it
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _load_hint(engines: Sequence[_Engine], engine: _Engine) -> str:
    if len(engines) < 2:
        return ""
    return (
        f"; with several engines copy it to each: `docker save IMAGE | docker -H {engine.host} "
        "load` (scripts/docker2.sh does it for the test engine)"
    )


def _local_engine() -> bool:
    """True when the engines run on this machine (unix sockets), so bind mounts work."""
    return all(h.startswith("unix://") for h in docker_hosts())


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

    def infrastructure_lost(self) -> bool:
        return _engine_lost(getattr(self, "engine", None), self.api, self.cid)


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

    def infrastructure_lost(self) -> bool:
        return _engine_lost(getattr(self, "engine", None), self.api, self.cid)


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
        hosts: Sequence[str] | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise SandboxError(f"transport={transport!r} is invalid: pass one of {TRANSPORTS}")
        self.image = image
        wanted = docker_hosts(hosts)
        local = all(h.startswith("unix://") for h in wanted)
        if transport == "socket" and not local:
            remote = ", ".join(h for h in wanted if not h.startswith("unix://"))
            raise SandboxError(
                f"transport='socket' needs a local engine ({remote} is remote, so a host "
                "directory cannot be bind-mounted); fix: transport='attach' or 'auto'"
            )
        self._engines = [self._open_engine(h, image) for h in wanted]
        self._image_id: str = self._same_image(self._engines)
        #: "socket": unix socket in a bind-mounted host directory (local engines);
        #: "attach": the container's attached stdin/stdout through the engine (any engine)
        self.transport = "socket" if transport == "auto" and local else transport
        if self.transport == "auto":
            self.transport = "attach"
        self._transport_requested = transport
        self._socket_proven = False  # a socket worker connected once: failures are real
        self._client = self._engines[0].client  # the first engine (health, prune helpers)
        self._api = self._engines[0].api
        self._engine_lock = threading.Lock()
        self._memory_mb = memory_mb
        self._fsize_mb = fsize_mb
        self._nofile = nofile
        self._size = pool_size or default_pool_size()
        self._hardening = hardening_config(
            memory_mb=memory_mb, cpus=cpus, pids_limit=pids_limit, tmpfs_mb=tmpfs_mb
        )
        for engine in self._engines:  # the same hardening on every engine
            engine.host_config = engine.api.create_host_config(**self._hardening)
        self._host_config = self._engines[0].host_config
        self._owner = str(os.getpid())
        self._worker_id = env_option("PYTEST_XDIST_WORKER") or "main"
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

    # ---- engines --------------------------------------------------------------------------
    @staticmethod
    def _open_engine(host: str, image: str) -> _Engine:
        # DOCKER_HOST itself goes through docker.from_env (keeps its TLS variables)
        client = docker_client(host=None if host == _engine_name() else host)
        try:
            capacity = max(1, int(client.api.info().get("NCPU") or 1))
        except Exception:
            capacity = 1
        return _Engine(host=host, client=client, api=client.api, capacity=capacity)

    def _same_image(self, engines: Sequence[_Engine]) -> str:
        """The image id every engine holds; the same bytes must run everywhere."""
        ids: dict[str, str] = {}
        for engine in engines:
            try:
                ids[engine.host] = str(engine.api.inspect_image(self.image)["Id"])
            except Exception as exc:
                raise SandboxUnavailable(
                    f"sandbox image {self.image!r} not found on the engine at {engine.host} "
                    f"({exc}); fix: run `harness sandbox build` (offline debootstrap build) or "
                    f"build sandbox/Dockerfile and tag it {self.image!r}"
                    + _load_hint(engines, engine)
                ) from exc
        if len(set(ids.values())) > 1:
            listed = ", ".join(f"{h}: {i[:19]}" for h, i in ids.items())
            raise SandboxUnavailable(
                f"sandbox image {self.image!r} differs between engines ({listed}); every engine "
                "must run the same image: copy it with `docker save IMAGE | docker -H HOST load`"
            )
        return next(iter(ids.values()))

    def _pick_engine(self, exclude: Sequence[_Engine]) -> _Engine:
        """The live engine with the fewest workers per CPU (claimed under the lock)."""
        with self._engine_lock:
            alive = [e for e in self._engines if e.alive and e not in exclude]
            if not alive:
                gone = ", ".join(e.host for e in self._engines)
                raise SandboxUnavailable(
                    f"every Docker engine of the sandbox is unreachable ({gone}); fix: "
                    f"{_FIX_DAEMON}"
                )
            load = {id(e): e.starting for e in alive}
            pool = getattr(self, "_pool", None)
            for w in pool.workers() if pool is not None else []:
                engine = getattr(w.channel, "engine", None)
                if engine is not None and id(engine) in load and not w.dead:
                    load[id(engine)] += 1
            best = min(alive, key=lambda e: (load[id(e)] / e.capacity, self._engines.index(e)))
            best.starting += 1
            return best

    # ---- workers --------------------------------------------------------------------------
    def _make_worker(self, serial: int) -> Worker:
        """A worker on the least loaded live engine.  An engine that fails to start one is
        skipped for this worker (and for good if it stopped answering); only when every
        engine failed does this raise."""
        tried: list[_Engine] = []
        while True:
            engine = self._pick_engine(tried)
            try:
                worker = self._make_worker_on(engine, serial)
            except (SandboxError, OSError) as exc:
                tried.append(engine)
                engine.reachable()  # an engine that stopped answering stays out for good
                if all(e in tried or not e.alive for e in self._engines):
                    if any(e.alive for e in self._engines):
                        raise  # the engines answer but refuse: a real error, not a lost engine
                    raise SandboxUnavailable(
                        f"every Docker engine of the sandbox is unreachable (last: {engine.host}, "
                        f"{exc}); fix: {_FIX_DAEMON}"
                    ) from exc
                continue
            finally:
                with self._engine_lock:
                    engine.starting -= 1
            worker.channel.engine = engine  # type: ignore[attr-defined]
            return worker

    def _make_worker_on(self, engine: _Engine, serial: int) -> Worker:
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
                return self._make_socket_worker(engine, name, labels)
            except SandboxError:
                if self._transport_requested != "auto" or self._socket_proven:
                    raise
                if not engine.reachable():
                    raise
                # auto on an engine whose containers cannot see our directory: fall back
                self.transport = "attach"
        api = engine.api
        try:
            created = api.create_container(
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
                host_config=engine.host_config,
            )
            cid = created["Id"]
            with _LIVE_LOCK:
                _LIVE[cid] = api
            sock = api.attach_socket(
                cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            api.start(cid)
        except Exception as exc:
            self._raise_engine_error(engine, exc, f"starting sandbox container {name}")
        return Worker(_DockerChannel(api, cid, sock), name=name)

    def _accept_driver(self, api: Any, listener: socket.socket, cid: str) -> socket.socket:
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
                    running = api.inspect_container(cid)["State"].get("Running")
                except Exception:
                    running = False
                if not running:
                    raise SandboxError(
                        "the container exited before its driver connected (engine in another "
                        "mount namespace, e.g. rootless or remote? use transport='attach')"
                    ) from None

    def _make_socket_worker(self, engine: _Engine, name: str, labels: dict[str, str]) -> Worker:
        """Start a container whose driver talks to us over a unix socket (see _SocketChannel)."""
        api = engine.api
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
            host_config = api.create_host_config(
                **self._hardening, binds={tmpdir: {"bind": SOCKET_DIR, "mode": "ro"}}
            )
            created = api.create_container(
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
                _LIVE[cid] = api
            api.start(cid)
            init_pid = int(api.inspect_container(cid)["State"]["Pid"])
        except Exception as exc:
            listener.close()
            os.close(dir_fd)
            _remove_socket_dir(tmpdir)
            if cid:
                _remove(api, cid)
            self._raise_engine_error(engine, exc, f"starting sandbox container {name}")
        try:
            conn = self._accept_driver(api, listener, cid)
            pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, 17, 12))
            if pid != init_pid:  # 17 = SO_PEERCRED; only the container's PID 1 may connect
                conn.close()
                raise SandboxError(
                    f"unexpected connection to the sandbox socket of {name} from pid {pid} "
                    f"(the container's init is {init_pid}); refusing it"
                )
            conn.settimeout(None)
        except (OSError, SandboxError) as exc:
            _remove(api, cid)
            _remove_socket_dir(tmpdir)
            raise SandboxError(f"sandbox worker {name} did not connect: {exc}") from exc
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink("s", dir_fd=dir_fd)  # nothing else can connect any more
            os.close(dir_fd)
        self._socket_proven = True
        return Worker(_SocketChannel(api, cid, conn, tmpdir), name=name)

    def _raise_engine_error(self, engine: _Engine, exc: Exception, what: str) -> NoReturn:
        if not engine.reachable():
            raise SandboxUnavailable(
                f"Docker daemon at {engine.host} became unreachable while {what} "
                f"({type(exc).__name__}: {exc}); fix: {_FIX_DAEMON}"
            ) from exc
        raise SandboxError(f"Docker engine {engine.host} refused {what}: {exc}") from exc

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

    def engines(self) -> list[dict[str, Any]]:
        """Per engine: host, CPUs it reported, whether it answers, workers it runs now."""
        running: dict[int, int] = {}
        for w in self._pool.workers():
            engine = getattr(w.channel, "engine", None)
            if engine is not None and not w.dead:
                running[id(engine)] = running.get(id(engine), 0) + 1
        return [
            {
                "host": e.host,
                "capacity": e.capacity,
                "alive": e.reachable(),
                "workers": running.get(id(e), 0) if e.alive else 0,
            }
            for e in self._engines
        ]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            image=self.image,
            driver_sha256=driver_digest(),
            engine=", ".join(e.host for e in self._engines),
            engines=self.engines(),
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
        for w in self._pool.workers():
            channel = w.channel
            if not isinstance(channel, _DockerChannel | _SocketChannel):
                continue
            cid = channel.cid
            try:
                state = channel.api.inspect_container(cid)["State"]
            except Exception as exc:
                problems.append(f"container {cid[:12]} vanished: {exc}")
                continue
            if not state.get("Running"):
                problems.append(f"container {cid[:12]} not running: {state.get('Status')}")
        problems += [f"engine {e.host} is unreachable" for e in self._engines if not e.alive]
        mine = [
            c
            for e in self._engines
            if e.alive
            for c in e.api.containers(
                all=True, filters={"label": [f"{LABEL}.owner-pid={self._owner}", f"{LABEL}=1"]}
            )
        ]
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
