"""Log every training run to Weights & Biases — offline by default, never over the network unasked.

A verdict about a trained model is easier to trust when the run that made it
can be inspected: its loss curve, learning-rate schedule, gradient norms and
the gate metrics computed on it.  :class:`RunTracker` records those in a W&B
run written to local disk (``mode="offline"``: ``wandb sync`` can upload it
later), and :meth:`RunTracker.record` is the JSON evidence keeps (mode, run
id, run directory).

* The mode comes from the settings (``WANDB_MODE``, default ``offline``,
  :mod:`harness.settings`) or the caller; ``disabled`` only when the user asks.
  It is passed to ``wandb.init(mode=...)`` — this module never writes
  ``os.environ``.
* Without the ``wandb`` package (``pip install 'gate-harness[wandb]'``) the
  tracker is inactive and says so in its record instead of failing training.
* :func:`read_offline_run` reads a run directory back (history rows, config,
  summary) from its ``run-<id>.wandb`` log, without W&B's servers.

Usage::

    with RunTracker(project="gate-harness", name="sft-baseline", config=cfg) as run:
        for step in ...:
            run.log(step, {"loss": loss, "lr": lr, "grad_norm": gn})
        run.summary({"gate/final_loss": loss})
    run.record()  # {"mode": "offline", "run_dir": ".../offline-run-...", ...}
"""

from __future__ import annotations

import importlib.util
import json
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import TrainerError
from harness.settings import WandbMode, get_settings

__all__ = ["OfflineRun", "RunTracker", "read_offline_run"]

DEFAULT_PROJECT = "gate-harness"


class RunTracker:
    """One training run's W&B log: ``log(step, metrics)``, ``summary(metrics)``, ``finish()``."""

    def __init__(
        self,
        *,
        name: str,
        config: Mapping[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
        group: str | None = None,
        mode: WandbMode | str | None = None,
        directory: Path | str | None = None,
    ) -> None:
        settings = get_settings()
        self.mode = WandbMode(mode) if mode is not None else settings.wandb_mode
        self.directory = Path(directory) if directory is not None else settings.wandb_dir
        self.name = name
        self.project = project
        self.reason = ""
        self.run_dir: Path | None = None
        self._run: Any = None
        self._finished = False
        if self.mode is WandbMode.DISABLED:
            self.reason = "disabled by the user (WANDB_MODE=disabled or mode='disabled')"
            return
        if importlib.util.find_spec("wandb") is None:
            self.reason = "wandb is not installed; pip install 'gate-harness[wandb]'"
            return
        self._run = self._init(config or {}, group)
        self.run_dir = Path(self._run.dir).parent  # ``.../offline-run-<stamp>-<id>``

    def _init(self, config: Mapping[str, Any], group: str | None) -> Any:
        import wandb  # type: ignore[import-not-found,unused-ignore]

        self.directory.mkdir(parents=True, exist_ok=True)
        quiet = wandb.Settings(
            silent=True,
            console="off",
            x_disable_stats=True,  # no system-metrics sampler threads on a 2-core machine
            x_disable_machine_info=True,
            save_code=False,
            disable_git=True,
            x_save_requirements=False,
        )
        try:
            return wandb.init(
                project=self.project,
                name=self.name,
                group=group,
                config=json.loads(json.dumps(dict(config), default=str)),
                dir=str(self.directory),
                mode=self.mode.value,
                settings=quiet,
                reinit="create_new",
            )
        except Exception as exc:  # wandb raises its own types (UsageError, CommError, ...)
            raise TrainerError(
                f"W&B run {self.name!r} could not start in mode {self.mode.value} under "
                f"{self.directory}: {exc}; set WANDB_MODE=disabled to train without logging"
            ) from exc

    @property
    def active(self) -> bool:
        return self._run is not None and not self._finished

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log scalar ``metrics`` (loss, lr, grad_norm, ...) at training ``step``."""
        if self.active:
            self._run.log({k: float(v) for k, v in metrics.items()}, step=int(step))

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Set end-of-run values (final loss, gate metrics computed on the trained model)."""
        if self.active:
            for key, value in metrics.items():
                self._run.summary[key] = value

    def finish(self, *, failed: bool = False) -> Path | None:
        """Close the run and return its directory (``None`` when inactive)."""
        if self.active:
            self._run.finish(exit_code=1 if failed else 0)
            self._finished = True
        return self.run_dir

    def record(self) -> dict[str, Any]:
        """What evidence stores about this run."""
        run_id = None if self._run is None else str(self._run.id)
        return {
            "mode": self.mode.value if self._run is not None else "inactive",
            "project": self.project,
            "name": self.name,
            "run_id": run_id,
            "run_dir": None if self.run_dir is None else str(self.run_dir),
            "reason": self.reason,
        }

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(failed=exc_type is not None)


# --------------------------------------------------------------------------- read back

_HEADER = struct.Struct("<4sHB")  # ident ":W&B", magic 0xBEE1, version
_RECORD = struct.Struct("<IHB")  # crc32, length, type
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What an offline run directory holds: per-step history rows, config and summary."""

    run_id: str
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def read_offline_run(run_dir: Path | str, *, wait_s: float = 30.0) -> OfflineRun:
    """Parse ``run-<id>.wandb`` in ``run_dir`` (W&B's record log of protobuf ``Record``s).

    W&B's writer process may still be flushing a run that ``finish()`` has just
    closed; until the run's exit record is on disk the log is re-read, for at
    most ``wait_s`` seconds (then what is there is returned, ``exit_code=None``).
    """
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise TrainerError(f"{run_dir}: no run-*.wandb file; is this a W&B run directory?")
    deadline = time.monotonic() + wait_s
    while True:
        out = _parse_run(files[0])
        if out.exit_code is not None or time.monotonic() >= deadline:
            return out
        time.sleep(0.2)


def _parse_run(path: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb  # type: ignore[import-not-found,unused-ignore]

    out = OfflineRun(run_id=path.stem.removeprefix("run-"))
    for payload in _records(path):
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out.history.append({_item_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind in ("config", "run"):
            updates = rec.config.update if kind == "config" else rec.run.config.update
            for item in updates:
                out.config[_item_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in rec.summary.update:
                out.summary[_item_key(item)] = json.loads(item.value_json)
        elif kind == "exit":
            out.exit_code = int(rec.exit.exit_code)
    return out


def _item_key(item: Any) -> str:
    return str(item.key) if item.key else "/".join(item.nested_key)


def _records(path: Path) -> list[bytes]:
    """The payloads of a LevelDB-style log: 32 KiB blocks of (crc, length, type) chunks."""
    data = path.read_bytes()
    if len(data) < _HEADER.size or _HEADER.unpack_from(data)[0] != b":W&B":
        raise TrainerError(f"{path}: not a W&B run log (bad header)")
    pos, out, parts = _HEADER.size, [], []
    while pos + _RECORD.size <= len(data):
        if _BLOCK - pos % _BLOCK < _RECORD.size:  # block trailer padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = _RECORD.unpack_from(data, pos)
        if pos + _RECORD.size + length > len(data):
            break  # a record still being written: stop at the last whole one
        chunk = data[pos + _RECORD.size : pos + _RECORD.size + length]
        if kind == 0 and length == 0:  # zero fill at the end of a block
            pos += _BLOCK - pos % _BLOCK
            continue
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            raise TrainerError(f"{path}: corrupt record at byte {pos} (checksum mismatch)")
        pos += _RECORD.size + length
        parts.append(chunk)
        if kind in (_FULL, _LAST):
            out.append(b"".join(parts))
            parts = []
    return out
