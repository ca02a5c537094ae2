"""Atomic file and directory writes: readers see the old content or the new, never half.

Every artifact gate-harness writes — evidence, reports, caches, fetched data,
trained checkpoints — goes through this module, so crash safety is decided in
one place.  A file is written to a temporary name in the *same* directory
(``os.replace`` is atomic only within one filesystem), flushed and fsync-ed,
then renamed over the target.  A directory is built under a temporary sibling
name and renamed into place, replacing an older one.

Why not one helper per caller: there were ten, and they differed in whether
they fsync-ed, cleaned up their temporary file on error, or created the parent
directory — each difference a way to leave a torn cache entry behind.

Errors are :class:`~harness.errors.AtomicWriteError` naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, overload

from harness.errors import AtomicWriteError

__all__ = [
    "atomic_dir",
    "atomic_open",
    "atomic_symlink",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_jsonl",
    "atomic_write_new",
    "atomic_write_text",
    "durable_append",
]


def _error(path: Path, exc: OSError) -> AtomicWriteError:
    reason = exc.strerror or str(exc)
    return AtomicWriteError(f"{path}: cannot write ({reason}); check the directory is writable")


@overload
def atomic_open(
    path: str | Path, mode: Literal["w"] = "w", *, perms: int | None = None
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_open(
    path: str | Path, mode: Literal["wb"], *, perms: int | None = None
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def atomic_open(
    path: str | Path, mode: Literal["w", "wb"] = "w", *, perms: int | None = None
) -> contextlib.AbstractContextManager[IO[Any]]:
    """``with atomic_open(path) as fh: ...`` — stream into ``path``, published on success.

    For writers that produce content incrementally (``pickle.dump``, JSONL
    rows).  On an exception inside the block the target is left untouched and
    the temporary file removed.  ``perms`` (e.g. ``0o644``) overrides mkstemp's
    owner-only mode for files other users must read.
    """
    return _atomic_open(Path(path), mode, perms)


@contextlib.contextmanager
def _atomic_open(path: Path, mode: str, perms: int | None) -> Iterator[IO[Any]]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _error(path, exc) from exc
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if perms is not None:
            os.chmod(tmp, perms)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, perms: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + ``os.replace``)."""
    with atomic_open(path, "wb", perms=perms) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, perms: int | None = None) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), perms=perms)


def atomic_write_json(
    path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = True
) -> Path:
    """Write ``obj`` as JSON atomically (non-JSON values such as paths via ``str``)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str)
    return atomic_write_text(path, text + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any] | str]) -> Path:
    """Write one JSON object per line atomically; a ``str`` row is taken as already-encoded."""
    with atomic_open(path, "w") as fh:
        for row in rows:
            if isinstance(row, str):
                line = row
            else:
                line = json.dumps(dict(row), sort_keys=True, default=str)
            fh.write(line.rstrip("\n") + "\n")
    return Path(path)


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """``with atomic_dir(out) as tmp: <fill tmp>`` — publish a whole directory at once.

    The directory is built under a temporary sibling name; on success an older
    ``final`` is moved aside and the new one renamed into place (two renames, so
    a reader sees the old or the new tree, and a crash between them leaves
    ``final`` missing — a cache miss — rather than a mixed tree).  On an
    exception ``final`` is untouched and the temporary tree removed.
    """
    target = Path(final)
    try:
        parent = target.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise _error(target, exc) from exc
    try:
        yield tmp
        old: Path | None = None
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old / "tree")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _error(target, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_symlink(link: str | Path, target: str | Path) -> Path:
    """Point ``link`` at ``target`` atomically (create a temporary link, rename it over)."""
    path = Path(link)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _error(path, exc) from exc
    return path


_MAX_NAME_ATTEMPTS = 10_000


def atomic_write_new(name_for: Callable[[int], Path], data: bytes) -> Path:
    """Write ``data`` under the first free name ``name_for(1)``, ``name_for(2)``, ...

    The bytes go to a temporary file (fsync-ed) that is then hard-linked to the
    candidate name: ``link`` fails if the name exists, so claiming a name and
    publishing the whole content are one atomic step, safe between processes.
    Where hard links are unsupported, the name is claimed with ``O_EXCL`` and
    the content moved over it with ``os.replace``.
    """
    first = name_for(1)
    try:
        first.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{first.name}.", suffix=".tmp", dir=first.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            for index in range(1, _MAX_NAME_ATTEMPTS + 1):
                path = name_for(index)
                try:
                    _claim(tmp, path)
                except FileExistsError:
                    continue
                return path
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise AtomicWriteError(
            f"{first}: cannot write ({exc.strerror}); check the directory is writable"
        ) from exc
    raise AtomicWriteError(
        f"{first}: {_MAX_NAME_ATTEMPTS} files of this name already exist; "
        "use a fresh --evidence-dir"
    )


def _claim(tmp: str, path: Path) -> None:
    """Publish ``tmp`` as ``path`` only if ``path`` does not exist (FileExistsError if it does)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network/overlay filesystems)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        os.replace(tmp, path)


def durable_append(path: str | Path, text: str) -> Path:
    """Append UTF-8 ``text`` (whole lines) to an append-only log with one write, then fsync.

    For logs that grow line by line (the evidence log, the judgement cache) a
    rewrite per line would be quadratic.  Callers serialise writers with a file
    lock; the bytes go out in one ``write`` on an ``O_APPEND`` descriptor, so
    concurrent readers see whole lines, and a crash can leave at most a torn
    last line, which the readers of these logs reject by name.
    """
    target = Path(path)
    data = text.encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _error(target, exc) from exc
    return target
