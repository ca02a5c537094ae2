"""Host side of the driver protocol: a pool of workers fed by a shared queue.

A *worker* is one driver process (inside a container, or a local
subprocess) reached through a :class:`Channel`. The pool keeps a small window
of requests in flight per worker so the driver never waits for a round trip,
reads results strictly in order, and owns the fault policy in one place:

* a worker that dies, hangs past its deadline or answers out of order is
  killed; every request it had not answered is re-queued on a fresh worker,
  where each runs **alone** (so a second loss is attributable to that program
  only); a request lost again while alone gets a typed ``sandbox_error``;
* a worker that reports an anomaly (a wipe that could not prove a clean slate,
  a driver fault) is retired at once — the driver exits — and the requests
  queued behind it are innocent: re-run on a fresh worker, with ``attempts``
  counting every run; a worker that has run ``recycle_after`` programs is
  drained and replaced;
* a worker whose engine went away (:meth:`Channel.infrastructure_lost`) takes
  no program down with it: its unanswered requests re-run on other workers
  without counting as lost (a Docker pool over several engines);
* every input gets exactly one result, in input order.
"""

from __future__ import annotations

import abc
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import SandboxError

from .base import (
    DEFAULT_MAX_SOURCE_BYTES,
    ExecResult,
    ExecStatus,
    Program,
    RawOutcome,
    classify,
    rejected_result,
    rejection,
    unrun_result,
)

__all__ = [
    "Channel",
    "ChannelDead",
    "Worker",
    "WorkerPool",
    "driver_requests",
    "result_from_driver",
]

#: seconds added to a program's own timeout before the host gives up on a worker
#: (covers the driver's kill-and-wipe, which is bounded at 3 s, plus transport).
HOST_GRACE_S = 6.0


def driver_requests(
    programs: Sequence[Program],
    *,
    timeout_s: float,
    memory_mb: int,
    output_cap: int,
    fsize_mb: int,
    nofile: int,
) -> list[dict[str, Any]]:
    """The driver-protocol requests (see ``driver.py``) for one batch, in input order.

    Lives beside the pool because the wire format is the protocol's, not any one
    sandbox's: Docker and local sandboxes send exactly the same requests.
    """
    return [
        {
            "src": p.source,
            "stdin": p.stdin,
            "timeout": timeout_s,
            "mem_mb": memory_mb,
            "cap": output_cap,
            "fsize_mb": fsize_mb,
            "nofile": nofile,
        }
        for p in programs
    ]


class ChannelDead(Exception):
    """The worker's stream ended or timed out (internal; turned into a retry)."""


class Channel(abc.ABC):
    """A byte pipe to one driver: requests in, JSON result lines out."""

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Write bytes to the driver's stdin (may block; called from a writer thread)."""

    @abc.abstractmethod
    def read_line(self, deadline: float) -> bytes:
        """Next stdout line of the driver; raise ChannelDead on EOF or at ``deadline``."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Destroy the worker (idempotent, never raises)."""

    def diagnostics(self) -> str:
        """Recent stderr of the driver, for error messages."""
        return ""

    def infrastructure_lost(self) -> bool:
        """True when the worker died because its engine went away (asked after a loss).

        Its in-flight programs are then innocent — no program can stop the engine —
        so they re-run on another worker without counting as lost.
        """
        return False


class Worker:
    """One driver behind a channel, with a writer thread so sends never deadlock reads."""

    def __init__(self, channel: Channel, *, name: str, ready_timeout_s: float = 30.0) -> None:
        self.channel = channel
        self.name = name
        self.done = 0
        self._out: queue.Queue[bytes | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name=f"{name}-writer", daemon=True)
        self._writer.start()
        try:
            line = channel.read_line(time.monotonic() + ready_timeout_s)
            hello = json.loads(line)
        except (ChannelDead, ValueError) as exc:
            channel.kill()
            raise SandboxError(
                f"sandbox worker {name} did not start: {exc}; driver stderr: "
                f"{channel.diagnostics()[-2000:]!r}"
            ) from exc
        if not hello.get("ready"):
            channel.kill()
            raise SandboxError(f"sandbox worker {name} sent {hello!r} instead of a ready line")
        self.hello: dict[str, Any] = hello
        self.dead = False

    def _write_loop(self) -> None:
        while True:
            data = self._out.get()
            if data is None:
                return
            try:
                self.channel.send(data)
            except Exception:
                self.dead = True
                return

    def submit(self, reqs: list[dict[str, Any]]) -> None:
        """Queue requests for the writer thread as one write."""
        data = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in reqs)
        self._out.put(data.encode("ascii"))

    def next_result(self, deadline: float) -> dict[str, Any]:
        line = self.channel.read_line(deadline)
        try:
            obj: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise ChannelDead(f"unparseable result line: {line[:200]!r}") from exc
        return obj

    def close(self) -> None:
        self._out.put(None)
        self.channel.kill()


def result_from_driver(
    program: Program,
    res: dict[str, Any],
    *,
    kind: str,
    image_id: str | None,
    attempts: int,
) -> ExecResult:
    """Type one driver result (the same mapping for every sandbox kind)."""
    raw = RawOutcome(
        exit_code=res.get("rc"),
        signal=res.get("sig"),
        timed_out=bool(res.get("timed_out")),
        memory_error=bool(res.get("memerr")),
        oom_killed=bool(res.get("oomkill")),
        stopped=bool(res.get("stopped")),
        spawn_error=str(res.get("spawn_error") or ""),
        proof=res.get("proof") is True,
        tampered=res.get("tamper") is True,
    )
    status, detail = classify(raw)
    if res.get("anomaly"):
        detail += f"; worker recycled: {res['anomaly']}"
    return ExecResult(
        program_id=program.id,
        status=status,
        exit_code=raw.exit_code,
        stdout=str(res.get("out", "")),
        stderr=str(res.get("err", "")),
        truncated=bool(res.get("trunc")),
        duration_s=float(res.get("dur") or 0.0),
        sandbox_kind=kind,
        image_id=image_id,
        signal=raw.signal,
        detail=detail,
        attempts=attempts,
    )


def lost_result(
    program: Program, *, kind: str, image_id: str | None, why: str, attempts: int = 2
) -> ExecResult:
    """Typed result for a program the sandbox lost twice (never silently dropped)."""
    return unrun_result(
        program,
        kind=kind,
        image_id=image_id,
        status=ExecStatus.SANDBOX_ERROR,
        detail=f"lost twice, the second time running alone on a fresh worker: {why}",
        attempts=attempts,
    )


#: an item re-queued this many times for *other* programs' faults gets a sandbox_error
#: (a bound, so a sandbox that can never finish a batch still ends)
MAX_ATTEMPTS = 6


@dataclass
class _Item:
    index: int
    #: runs started so far (reported in the result as ``attempts``)
    attempts: int = 0
    #: times its worker died or hung while it was in flight and unanswered
    losses: int = 0

    @property
    def solo(self) -> bool:
        """Lost once: run it alone, so a second loss can only be its own doing."""
        return self.losses > 0


class _Batch:
    """The state one :meth:`WorkerPool.run` shares between its slot threads: the result per
    input, the queue of items still to run, and the fault policy's bookkeeping."""

    def __init__(
        self, pool: WorkerPool, programs: Sequence[Program], results: list[ExecResult | None]
    ) -> None:
        self.pool = pool
        self.programs = programs
        self.results = results
        self.todo: deque[_Item] = deque(_Item(i) for i, r in enumerate(results) if r is None)
        self.cond = threading.Condition()
        self.pending = len(self.todo)
        self.fatal: list[BaseException] = []

    def wait_for_work(self) -> bool:
        """Block until an item is queued (True) or the batch is over (False): every input
        answered, or a slot failed fatally."""
        with self.cond:
            while True:
                if self.pending == 0 or self.fatal:
                    return False
                if self.todo:
                    return True
                self.cond.wait(0.05)

    def take(self, solo_ok: bool) -> _Item | None:
        with self.cond:
            if not self.todo or (self.todo[0].solo and not solo_ok):
                return None
            return self.todo.popleft()

    def finish(self, item: _Item, res: ExecResult) -> None:
        with self.cond:
            if self.results[item.index] is not None:  # defensive: never duplicate
                raise SandboxError(f"duplicate result for program index {item.index}")
            self.results[item.index] = res
            self.pending -= 1
            self.cond.notify_all()

    def requeue(self, items: list[_Item], why: str, *, lost: bool) -> None:
        """Run ``items`` again on a fresh worker.

        ``lost``: the worker died or hung with them in flight; any of them may be
        the culprit, so each gets one more run *alone*, and only a program lost
        while alone gets a ``sandbox_error``. Otherwise (a worker retired after
        another program's failed wipe) they are innocent and simply re-run.
        """
        pool = self.pool
        again: list[_Item] = []
        for it in items:
            it.attempts += 1
            if lost:
                it.losses += 1
            if (lost and it.losses >= 2) or it.attempts >= MAX_ATTEMPTS:
                self.finish(
                    it,
                    lost_result(
                        self.programs[it.index],
                        kind=pool.kind,
                        image_id=pool._image_id(),
                        why=why,
                        attempts=it.attempts,
                    ),
                )
            else:
                again.append(it)
        with self.cond:
            pool.retried += len(again)
            self.todo.extendleft(reversed(again))  # in their original order, ahead of the rest
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.fatal.append(exc)
            self.cond.notify_all()

    def collect(self) -> list[ExecResult]:
        """The results in input order, or the first fatal error."""
        if self.fatal:
            raise self.fatal[0]
        missing = [i for i, r in enumerate(self.results) if r is None]
        if missing:  # pragma: no cover - guarded by the loop invariant
            raise SandboxError(f"internal error: no result for program indices {missing[:10]}")
        return [r for r in self.results if r is not None]


class WorkerPool:
    """Fixed-size pool of workers; ``run`` distributes requests and enforces the fault policy."""

    def __init__(
        self,
        factory: Callable[[int], Worker],
        *,
        size: int,
        kind: str,
        image_id: Callable[[], str | None],
        recycle_after: int = 5000,
        window: int = 12,
        max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    ) -> None:
        if size < 1:
            raise SandboxError(f"pool size={size} is invalid: pass pool_size ≥ 1")
        self._factory = factory
        self.size = size
        self.kind = kind
        self._image_id = image_id
        self.recycle_after = recycle_after
        self.window = window
        self.max_source_bytes = max_source_bytes
        self._workers: list[Worker | None] = [None] * size
        self._serial = 0
        self._lock = threading.Lock()
        self.recycled = 0
        self.retried = 0
        #: called with every raw driver result (CPU attribution in sandbox.bench); None: off
        self.raw_hook: Callable[[dict[str, Any]], None] | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start every worker in parallel; raise the first start error."""
        errors: list[BaseException] = []

        def boot(slot: int) -> None:
            try:
                self._workers[slot] = self._new_worker()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(i,)) for i in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            raise errors[0]

    def _new_worker(self) -> Worker:
        with self._lock:
            self._serial += 1
            serial = self._serial
        return self._factory(serial)

    def close(self) -> None:
        for i, w in enumerate(self._workers):
            if w is not None:
                w.close()
                self._workers[i] = None

    def workers(self) -> list[Worker]:
        return [w for w in self._workers if w is not None]

    # ---- running --------------------------------------------------------------------------
    def run(
        self, programs: Sequence[Program], requests: Sequence[dict[str, Any]], timeouts: float
    ) -> list[ExecResult]:
        """One result per program, in input order (one thread per slot feeds its worker)."""
        batch = _Batch(self, programs, self._rejections(programs))
        threads = [
            threading.Thread(
                target=self._serve_slot,
                args=(batch, i, requests, timeouts),
                name=f"sandbox-slot-{i}",
                daemon=True,
            )
            for i in range(self.size)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return batch.collect()

    def _rejections(self, programs: Sequence[Program]) -> list[ExecResult | None]:
        """``rejected`` results for programs never to be run (oversize, unencodable); None for
        the others."""
        results: list[ExecResult | None] = [None] * len(programs)
        for i, program in enumerate(programs):
            why = rejection(program, max_source_bytes=self.max_source_bytes)
            if why:
                results[i] = rejected_result(
                    program, kind=self.kind, image_id=self._image_id(), why=why
                )
        return results

    def _serve_slot(
        self, batch: _Batch, slot: int, requests: Sequence[dict[str, Any]], timeouts: float
    ) -> None:
        """One slot's thread: drive a live worker while the batch has work; an error (e.g.
        :class:`SandboxUnavailable`) stops the whole batch and is raised by :meth:`run`."""
        try:
            while batch.wait_for_work():
                worker = self._live_worker(slot)
                self._drive(
                    worker,
                    slot,
                    batch.take,
                    batch.finish,
                    batch.requeue,
                    batch.programs,
                    requests,
                    timeouts,
                )
        except BaseException as exc:  # surfaced by run()
            batch.fail(exc)

    def _live_worker(self, slot: int) -> Worker:
        """The slot's worker, replaced by a fresh one when missing or dead."""
        worker = self._workers[slot]
        if worker is None or worker.dead:
            if worker is not None:
                worker.close()
            self._workers[slot] = None
            worker = self._new_worker()
            self._workers[slot] = worker
            self.recycled += 1
        return worker

    def _drive(
        self,
        worker: Worker,
        slot: int,
        take: Callable[[bool], _Item | None],
        finish: Callable[[_Item, ExecResult], None],
        requeue: Callable[..., None],
        programs: Sequence[Program],
        requests: Sequence[dict[str, Any]],
        timeout_s: float,
    ) -> None:
        """Feed one worker until the queue is empty, it must be recycled, or it dies."""
        inflight: deque[_Item] = deque()
        draining = False
        last = time.monotonic()
        while True:
            batch = [] if draining else self._refill(inflight, take, requests)
            if batch:
                worker.submit(batch)
            if not inflight:
                if draining:
                    worker.close()
                    self._workers[slot] = None
                return
            head = inflight[0]
            try:
                res = worker.next_result(last + timeout_s + HOST_GRACE_S)
                if res.get("id") != str(head.index):
                    raise ChannelDead(f"result for {res.get('id')!r} while expecting {head.index}")
            except ChannelDead as exc:
                self._lose(worker, slot, exc, list(inflight), requeue)
                return
            last = time.monotonic()
            if self.raw_hook is not None:
                self.raw_hook(res)
            inflight.popleft()
            worker.done += 1
            finish(
                head,
                result_from_driver(
                    programs[head.index],
                    res,
                    kind=self.kind,
                    image_id=self._image_id(),
                    attempts=head.attempts + 1,
                ),
            )
            if res.get("anomaly"):
                # the driver retires itself after an unclean wipe or a fork-server fault:
                # programs queued behind it are innocent, re-run them on a fresh worker
                worker.close()
                self._workers[slot] = None
                if inflight:
                    requeue(
                        list(inflight),
                        f"worker {worker.name} retired: {res['anomaly']}",
                        lost=False,
                    )
                return
            if worker.done >= self.recycle_after:
                draining = True

    def _refill(
        self,
        inflight: deque[_Item],
        take: Callable[[bool], _Item | None],
        requests: Sequence[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Requests to send now (taken into ``inflight``): in batches of ≥ 4 (one write),
        before the driver's queue runs dry, up to the window; a program lost once alone."""
        batch: list[dict[str, Any]] = []
        refill = len(inflight) <= self.window - 4
        while refill and len(inflight) < self.window:
            if inflight and inflight[-1].solo:
                break  # a program lost once runs alone
            item = take(not inflight)
            if item is None:
                break
            req = dict(requests[item.index])
            req["id"] = str(item.index)
            batch.append(req)
            inflight.append(item)
        return batch

    def _lose(
        self,
        worker: Worker,
        slot: int,
        exc: ChannelDead,
        unanswered: list[_Item],
        requeue: Callable[..., None],
    ) -> None:
        """The worker died, hung or answered out of order: kill it and re-queue what it had
        not answered — as lost, unless its whole engine went away (then nobody is to blame)."""
        diag = worker.channel.diagnostics()[-300:]
        why = f"worker {worker.name} died or hung ({exc}); {diag}"
        worker.dead = True
        engine_gone = worker.channel.infrastructure_lost()
        worker.close()
        self._workers[slot] = None
        if engine_gone:
            why = f"engine of worker {worker.name} went away ({exc})"
        requeue(unanswered, why, lost=not engine_gone)
