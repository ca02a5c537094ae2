"""The build steps the sandbox images share: content keys, reuse-or-build, ``:latest``, locks.

Both images are built offline and tagged by content — the base image
(:mod:`sandbox.image`: debootstrap → ``docker import``, tag keyed on the rootfs
sha256) and the ast-grep sibling (:mod:`sandbox.astgrep_image`: ``FROM <base id>``
+ the binary, tag keyed on both).  What differs is only *how* the layer is made;
what must be the same for both lives here once:

* the content digest of a file (:func:`file_sha256`);
* reuse the content-keyed tag when the engine has it, else build it, check that
  the build really produced it, and point ``<repository>:latest`` at it
  (:func:`publish_image`) — so a stale ``:latest`` is never what a caller gets;
* an engine failure while building is :class:`~harness.errors.SandboxUnavailable`
  (the environment), a bad build result a :class:`~harness.errors.SandboxError`;
* one build at a time per image across xdist workers (:func:`build_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import SandboxError, SandboxUnavailable

__all__ = ["build_lock", "default_cache_dir", "file_sha256", "inspect_image", "publish_image"]

#: longest wait for another process's build of the same image (seconds)
BUILD_LOCK_TIMEOUT_S = 900


def default_cache_dir() -> Path:
    """``<cache_dir>/sandbox`` (``HARNESS_CACHE_DIR``; see :mod:`harness.settings`)."""
    from harness.settings import get_settings

    return get_settings().sandbox_dir


def file_sha256(path: Path) -> str:
    """sha256 of a (possibly large) file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inspect_image(api: Any, ref: str) -> dict[str, Any] | None:
    """The engine's inspect data of ``ref``, or None when it has no such image."""
    try:
        return dict(api.inspect_image(ref))
    except Exception:
        return None


def publish_image(
    api: Any,
    ref: str,
    *,
    build: Callable[[], None],
    action: str,
    source: str,
    rebuild: bool = False,
) -> tuple[dict[str, Any], bool]:
    """``(inspect data, reused)`` of the content-keyed ``ref`` (``<repository>:<tag>``).

    Reuses ``ref`` when the engine has it (unless ``rebuild``), else calls ``build``
    (which must create ``ref``) and checks it exists; either way ``<repository>:latest``
    then points at it.  ``action`` (``"docker import"``) and ``source`` (what it was run
    on) name a failure: an engine error is :class:`SandboxUnavailable`.
    """
    found = None if rebuild else inspect_image(api, ref)
    reused = found is not None
    if found is None:
        try:
            build()
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxUnavailable(f"{action} of {source} failed: {exc}") from exc
        found = inspect_image(api, ref)
        if found is None:
            raise SandboxError(f"{action} reported success but {ref} is missing")
    repository = ref.rsplit(":", 1)[0]
    api.tag(ref, repository, "latest", force=True)
    return found, reused


@contextlib.contextmanager
def build_lock(name: str, *, cache_dir: Path | None = None) -> Iterator[Path]:
    """Hold ``<cache>/<name>`` (a file lock, xdist-safe) around one image build; yields the
    cache directory (created if missing)."""
    from filelock import FileLock

    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / name), timeout=BUILD_LOCK_TIMEOUT_S):
        yield cache
