"""The ast-grep sibling image: the sandbox image plus the ``ast-grep`` binary, built offline.

The code-edit validator applies model-written ast-grep rules with the real
binary, inside the same hardened containers that run model-written Python.  The
binary comes from the ``ast-grep-cli`` wheel already installed beside this
interpreter (pinned in ``constraints/ci.txt``), so nothing is downloaded: the
image is one layer — ``COPY ast-grep /usr/local/bin/ast-grep`` — on top of the
offline sandbox image (:mod:`sandbox.image`), built by the engine from a
context we hand it (``FROM <base image id>``: no registry, no pull).

Why a sibling and not the base image: programs of every other phase keep running
on the unchanged base image (its id is recorded in their evidence), and the
base build stays a pure debootstrap.  The tag is keyed on content —
``<base image id[:12]>-<binary sha256[:12]>`` — so a new base or a new binary
builds a new image and a stale one is never reused.  Every hardening knob
(read-only root, no network, seccomp, non-root, limits) is applied by
:class:`~sandbox.docker_pool.DockerSandbox` when it creates containers, not by the
image, so they hold unchanged; the image keeps the base's ``USER 65534:65534``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SandboxError, SandboxUnavailable

from .docker_pool import DEFAULT_IMAGE, docker_client
from .image_build import build_lock, file_sha256, inspect_image, publish_image

__all__ = [
    "ASTGREP_IMAGE",
    "ASTGREP_LABEL",
    "ASTGREP_PATH",
    "BuiltToolImage",
    "astgrep_selfcheck",
    "build_astgrep_image",
    "ensure_astgrep_image",
    "host_ast_grep",
]

ASTGREP_REPOSITORY = "gate-harness-sandbox-astgrep"
ASTGREP_IMAGE = f"{ASTGREP_REPOSITORY}:latest"
#: where the binary sits inside the image (on the driver's PATH for programs)
ASTGREP_PATH = "/usr/local/bin/ast-grep"
#: image label carrying the binary's version; `harness sandbox check` runs the binary when set
ASTGREP_LABEL = "gate-harness.sandbox.ast-grep"


@dataclass(frozen=True, slots=True)
class BuiltToolImage:
    tag: str
    image_id: str
    base_image_id: str
    binary_sha256: str
    version: str
    size_bytes: int
    base_size_bytes: int
    seconds: float
    reused: bool


def host_ast_grep() -> Path:
    """The ``ast-grep`` binary of the installed ``ast-grep-cli`` wheel (SandboxError if none)."""
    from harness.data.code_edit.apply import ApplyError, ast_grep_binary

    try:
        return ast_grep_binary().resolve()
    except ApplyError as exc:
        raise SandboxError(str(exc)) from exc


def _version(binary: Path) -> str:
    proc = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        raise SandboxError(f"{binary} --version failed (exit {proc.returncode}): {proc.stderr}")
    return proc.stdout.strip().rsplit(" ", 1)[-1]


def _context(base_id: str, binary: Path, labels: dict[str, str]) -> io.BytesIO:
    """A build context (tar) holding the Dockerfile and the binary, made in memory."""
    label_lines = "".join(f'LABEL {k}="{v}"\n' for k, v in sorted(labels.items()))
    dockerfile = (
        f"FROM {base_id}\n"
        f"COPY ast-grep {ASTGREP_PATH}\n"
        f"{label_lines}"
        "USER 65534:65534\n"
        "WORKDIR /tmp\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        bin_info = tar.gettarinfo(str(binary), arcname="ast-grep")
        bin_info.uid = bin_info.gid = 0
        bin_info.uname = bin_info.gname = "root"
        bin_info.mode = 0o755
        with binary.open("rb") as fh:
            tar.addfile(bin_info, fh)
    buf.seek(0)
    return buf


def build_astgrep_image(
    *,
    base: str = DEFAULT_IMAGE,
    binary: Path | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> BuiltToolImage:
    """Build (or reuse) ``<repo>:<base12>-<bin12>`` from ``base`` + the binary; tag ``:latest``."""
    t0 = time.monotonic()
    api = docker_client(timeout=600).api
    base_info = inspect_image(api, base)
    if base_info is None:
        raise SandboxUnavailable(
            f"base sandbox image {base!r} not found; fix: run `harness sandbox build` first"
        )
    base_id = str(base_info["Id"])
    exe = binary or host_ast_grep()
    digest = file_sha256(exe)
    version = _version(exe)
    ref = f"{ASTGREP_REPOSITORY}:{base_id.split(':')[-1][:12]}-{digest[:12]}"
    labels = {
        ASTGREP_LABEL: version,
        f"{ASTGREP_LABEL}.sha256": digest,
        "gate-harness.sandbox.base-image": base_id,
    }

    def docker_build() -> None:
        log(f"docker build (offline, FROM {base_id[:19]}) + {exe.name} {version} → {ref}")
        for chunk in api.build(
            fileobj=_context(base_id, exe, labels),
            custom_context=True,
            tag=ref,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="none",
            decode=True,
        ):
            if "error" in chunk:
                raise SandboxError(f"docker build of {ref} failed: {chunk['error']}")

    found, reused = publish_image(
        api, ref, build=docker_build, action="docker build", source=ref, rebuild=rebuild
    )
    return BuiltToolImage(
        tag=ref,
        image_id=str(found["Id"]),
        base_image_id=base_id,
        binary_sha256=digest,
        version=version,
        size_bytes=int(found.get("Size", 0)),
        base_size_bytes=int(base_info.get("Size", 0)),
        seconds=time.monotonic() - t0,
        reused=reused,
    )


def ensure_astgrep_image(*, log: Callable[[str], None] = lambda _m: None) -> str:
    """Image id of the current ast-grep image (base built first if missing), under a file lock.

    "Current" means the content tag of today's base image and today's binary, so a
    rebuilt base or an upgraded wheel never runs against a stale ``:latest``.
    """
    from .image import ensure_image

    ensure_image(log=log)
    with build_lock("build-astgrep.lock"):
        return build_astgrep_image(log=log).image_id


_SELFCHECK = f"""
import os, subprocess
v = subprocess.run([{ASTGREP_PATH!r}, '--version'], capture_output=True, text=True, timeout=20)
assert v.returncode == 0, v.stderr
with open('rule.yml', 'w') as f:
    f.write('id: t\\nlanguage: python\\nrule: {{pattern: print($A)}}\\nfix: log($A)\\n')
with open('input.py', 'w') as f:
    f.write('print(1)\\nx = 2\\n')
p = subprocess.run([{ASTGREP_PATH!r}, 'scan', '-r', 'rule.yml', '--update-all', 'input.py'],
                   capture_output=True, text=True, timeout=20)
assert p.returncode == 0, p.stderr
with open('input.py') as f:
    assert f.read() == 'log(1)\\nx = 2\\n', 'rewrite differs'
assert not os.access({ASTGREP_PATH!r}, os.W_OK), 'binary writable by the sandbox user'
print(v.stdout.strip())
"""


def astgrep_selfcheck(sandbox: Any) -> tuple[bool, str]:
    """Run the binary inside ``sandbox``: ``--version`` and one real rewrite, and check that
    the sandbox user cannot replace it.  ``(ok, detail)``; used by ``harness sandbox check``."""
    from .base import Program

    res = sandbox.run([Program(_SELFCHECK, id="ast-grep-selfcheck")], timeout_s=30.0)[0]
    if res.passed:
        return True, res.stdout.strip()
    return False, f"{res.status.value}: {res.detail} {res.stderr.strip()[-400:]}".strip()
