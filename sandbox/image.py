"""Offline sandbox image build: debootstrap (minbase + python3) → ``docker import``.

No container registry is needed: the root filesystem comes from the Debian
mirror this machine's apt already uses (read from its sources configuration
at run time, or passed with ``--mirror``). The rootfs tarball is cached, so a
rebuild is just an import. The tag carries the tarball's sha256, and
:class:`~sandbox.docker_pool.DockerSandbox` records the resulting image id in
every result, so evidence names exactly which environment ran the code.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.cachekey import CacheKey, cache_key
from harness.errors import SandboxError, SandboxUnavailable

from .docker_pool import DEFAULT_IMAGE, docker_client
from .image_build import (
    build_lock,
    default_cache_dir,
    file_sha256,
    inspect_image,
    publish_image,
)

__all__ = [
    "BuiltImage",
    "build_image",
    "default_cache_dir",
    "ensure_image",
    "find_mirror",
    "parse_apt_sources",
]

REPOSITORY = DEFAULT_IMAGE.split(":", 1)[0]
DEFAULT_SUITE = "bookworm"
# Trimmed after debootstrap: caches and docs the sandbox never needs (~40 MB).
_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
)


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str
    image_id: str
    rootfs_sha256: str
    rootfs_tar: Path
    seconds: float
    reused: bool


def parse_apt_sources(apt_dir: Path = Path("/etc/apt")) -> list[tuple[str, list[str], list[str]]]:
    """Every enabled ``deb`` source as (uri, suites, components), one-line and deb822 formats."""
    out: list[tuple[str, list[str], list[str]]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [signed-by=...] options
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                out.append((parts[1], [parts[2]], parts[3:]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = ""
            for raw in stanza.splitlines():
                if raw.startswith("#"):
                    continue
                if raw[:1].isspace() and key:
                    fields[key] += " " + raw.strip()
                    continue
                if ":" in raw:
                    key, _, value = raw.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                out.append(
                    (uri, fields.get("suites", "").split(), fields.get("components", "").split())
                )
    return out


def find_mirror(suite: str = DEFAULT_SUITE, *, apt_dir: Path = Path("/etc/apt")) -> str:
    """The mirror this machine's apt uses for ``suite``/main, or a SandboxError naming the fix."""
    sources = parse_apt_sources(apt_dir)
    for uri, suites, comps in sources:
        if suite in suites and "main" in comps:
            return uri
    raise SandboxError(
        f"no apt source for suite {suite!r} with component 'main' in {apt_dir}/sources.list"
        f"{'' if sources else ' (no deb sources at all)'}; fix: pass --mirror <debian mirror URL> "
        "(the same URL apt uses), or --suite for the suite your sources list"
    )


def _debootstrap(suite: str, mirror: str, target: Path, log_path: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            "debootstrap is not installed; fix: `apt-get install debootstrap` (or build "
            "sandbox/Dockerfile where a registry is reachable)"
        )
    if os.geteuid() != 0:
        raise SandboxError(
            "debootstrap needs root to create device nodes and chown files; fix: run "
            "`sudo harness sandbox build` once (the result is cached), or build sandbox/Dockerfile"
        )
    cmd = ["debootstrap", "--variant=minbase", "--include=python3", suite, str(target), mirror]
    with log_path.open("wb") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SandboxError(
            f"debootstrap failed (exit {proc.returncode}); log {log_path}:\n{tail}\n"
            "fix: check the mirror (--mirror) and that apt can reach it"
        )


def rootfs_key(suite: str) -> CacheKey:
    """The rootfs tarball's cache key: this module's recipe (debootstrap flags, trimming), suite
    and machine — editing the recipe builds a new tarball instead of reusing a stale one."""
    return cache_key(
        "sandbox-rootfs",
        modules=["sandbox.image"],
        config={"suite": suite, "machine": platform.machine()},
    )


def _rootfs_path(cache: Path, suite: str) -> Path:
    return cache / f"rootfs-{suite}-{platform.machine()}-{rootfs_key(suite).short[:16]}.tar"


def _make_rootfs_tar(suite: str, mirror: str, cache: Path, log: Callable[[str], None]) -> Path:
    tar_path = _rootfs_path(cache, suite)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
    try:
        root = work / "root"
        log(
            f"debootstrap --variant=minbase --include=python3 {suite} "
            "(mirror from apt sources or --mirror)"
        )
        _debootstrap(suite, mirror, root, cache / "debootstrap.log")
        for rel in _TRIM:
            d = root / rel
            if d.is_dir():
                for child in d.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    elif child.name not in ("lock",):
                        child.unlink(missing_ok=True)
        (root / "etc" / "gate-harness-sandbox").write_text(
            f"suite={suite}\nbuilt={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n",
            encoding="utf-8",
        )
        tmp_tar = work / "rootfs.tar"
        subprocess.run(
            ["tar", "--sort=name", "--numeric-owner", "-C", str(root), "-cf", str(tmp_tar), "."],
            check=True,
        )
        os.replace(tmp_tar, tar_path)
        for stale in cache.glob(f"rootfs-{suite}-{platform.machine()}*.tar"):
            if stale != tar_path:  # tarballs of an older recipe (~100 MB each)
                stale.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tar_path


def build_image(
    *,
    mirror: str | None = None,
    suite: str = DEFAULT_SUITE,
    cache_dir: Path | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> BuiltImage:
    """Build (or reuse) the sandbox image and tag it ``<repo>:<suite>-<sha12>`` and ``:latest``."""
    t0 = time.monotonic()
    api = docker_client(timeout=600).api
    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tar_path = _rootfs_path(cache, suite)
    if rebuild or not tar_path.is_file():
        tar_path = _make_rootfs_tar(suite, mirror or find_mirror(suite), cache, log)
    else:
        log(f"reusing cached rootfs {tar_path}")
    digest = file_sha256(tar_path)
    tag = f"{suite}-{digest[:12]}"
    ref = f"{REPOSITORY}:{tag}"
    changes = [
        "LABEL gate-harness.sandbox.image=1",
        f"LABEL gate-harness.sandbox.rootfs-sha256={digest}",
        f"LABEL gate-harness.sandbox.suite={suite}",
        "USER 65534:65534",
        "WORKDIR /tmp",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
    ]

    def docker_import() -> None:
        log(f"docker import {tar_path.name} → {ref}")
        api.import_image_from_file(str(tar_path), repository=REPOSITORY, tag=tag, changes=changes)

    found, reused = publish_image(
        api, ref, build=docker_import, action="docker import", source=str(tar_path), rebuild=rebuild
    )
    return BuiltImage(
        tag=ref,
        image_id=str(found["Id"]),
        rootfs_sha256=digest,
        rootfs_tar=tar_path,
        seconds=time.monotonic() - t0,
        reused=reused,
    )


def ensure_image(
    image: str = DEFAULT_IMAGE,
    *,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> str:
    """Image id of ``image``, building it once (under a file lock, xdist-safe) when missing."""
    api = docker_client().api
    found = inspect_image(api, image)
    if found:
        return str(found["Id"])
    with build_lock("build.lock", cache_dir=cache_dir) as cache:
        found = inspect_image(api, image)
        if found:
            return str(found["Id"])
        if image != DEFAULT_IMAGE:
            raise SandboxUnavailable(
                f"image {image!r} not found; fix: build it or use {DEFAULT_IMAGE}"
            )
        return build_image(cache_dir=cache, log=log).image_id
