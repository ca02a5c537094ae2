"""Image build helpers: mirror discovery from apt sources, digest tags, cached rebuilds."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SandboxError
from sandbox.image import REPOSITORY, find_mirror, parse_apt_sources

MIRROR_A = "http://mirror-a.invalid/debian"
MIRROR_B = "http://mirror-b.invalid/debian"


def _apt(tmp_path: Path, *, one_line: str = "", deb822: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    if one_line:
        (tmp_path / "sources.list").write_text(one_line)
    if deb822:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    return tmp_path


def test_one_line_format_with_options_and_comments(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        one_line=(
            "# comment\n"
            f"deb-src {MIRROR_B} bookworm main\n"
            f"deb [arch=amd64 signed-by=/k.gpg] {MIRROR_A} bookworm main contrib # trailing\n"
        ),
    )
    assert parse_apt_sources(apt) == [(MIRROR_A, ["bookworm"], ["main", "contrib"])]
    assert find_mirror("bookworm", apt_dir=apt) == MIRROR_A


def test_deb822_format_multiple_stanzas_and_disabled(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        deb822=(
            f"Types: deb\nURIs: {MIRROR_B}\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
            f"Types: deb deb-src\n# note\nURIs: {MIRROR_A}\nSuites: bookworm bookworm-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {MIRROR_B}-security\nSuites: bookworm-security\nComponents: main\n"
        ),
    )
    assert find_mirror("bookworm", apt_dir=apt) == MIRROR_A
    assert find_mirror("bookworm-security", apt_dir=apt) == f"{MIRROR_B}-security"


def test_no_matching_source_names_the_fix(tmp_path: Path) -> None:
    apt = _apt(tmp_path, one_line=f"deb {MIRROR_A} trixie main\n")
    with pytest.raises(SandboxError, match="--mirror"):
        find_mirror("bookworm", apt_dir=apt)


def test_this_machine_has_a_bookworm_source() -> None:
    """The build reads the mirror from this machine's apt configuration (never hard-coded)."""
    uri = find_mirror("bookworm")
    assert uri.startswith(("http://", "https://", "file:/"))


@pytest.mark.docker
def test_built_image_is_labelled_with_its_rootfs_digest(docker_image: str) -> None:
    from sandbox.docker_pool import docker_client

    api = docker_client().api
    info = api.inspect_image(docker_image)
    labels = info["Config"]["Labels"]
    digest = labels["gate-harness.sandbox.rootfs-sha256"]
    assert len(digest) == 64
    assert any(t.startswith(f"{REPOSITORY}:") and digest[:12] in t for t in info["RepoTags"])
    assert info["Config"]["User"] == "65534:65534"


@pytest.mark.docker
def test_rebuild_from_cached_rootfs_reuses_the_image(docker_image: str) -> None:
    from sandbox.image import DEFAULT_SUITE, _rootfs_path, build_image, default_cache_dir

    if not _rootfs_path(default_cache_dir(), DEFAULT_SUITE).is_file():
        pytest.skip("no rootfs of the current recipe cached here (run `harness sandbox build`)")
    built = build_image()
    assert built.reused and built.image_id == docker_image
