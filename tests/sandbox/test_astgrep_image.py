"""The ast-grep sibling image: content-keyed tag, same hardening, the binary runs inside."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.astgrep_image import (
    ASTGREP_LABEL,
    astgrep_selfcheck,
    build_astgrep_image,
    ensure_astgrep_image,
    host_ast_grep,
)
from sandbox.docker_pool import DockerSandbox, docker_client

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def astgrep_image(docker_image: str) -> str:
    return ensure_astgrep_image()


@pytest.fixture(scope="module")
def astgrep_box(astgrep_image: str) -> Iterator[DockerSandbox]:
    sb = DockerSandbox(image=astgrep_image, pool_size=1)
    try:
        yield sb
    finally:
        sb.close()


def test_tag_is_keyed_on_base_and_binary_and_reused(astgrep_image: str, docker_image: str) -> None:
    built = build_astgrep_image()
    assert built.reused and built.image_id == astgrep_image
    base12 = docker_image.split(":")[-1][:12]
    assert built.tag.endswith(f":{base12}-{built.binary_sha256[:12]}")
    assert built.base_image_id == docker_image
    assert built.version.count(".") == 2  # e.g. 0.51.1, read from the binary
    # one layer more than the base: the binary (~50 MB), nothing else
    assert 0 < built.size_bytes - built.base_size_bytes < 2 * host_ast_grep().stat().st_size


def test_image_keeps_the_base_user_and_labels_the_binary(astgrep_image: str) -> None:
    cfg = docker_client().api.inspect_image(astgrep_image)["Config"]
    assert cfg["User"] == "65534:65534"
    assert cfg["Labels"][ASTGREP_LABEL] == build_astgrep_image().version


def test_containers_on_it_are_hardened_like_the_base(astgrep_box: DockerSandbox) -> None:
    api = docker_client().api
    for cid in astgrep_box.container_ids():
        hc = api.inspect_container(cid)["HostConfig"]
        assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
        assert hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
        assert hc["PidsLimit"] > 0 and hc["Memory"] > 0


def test_selfcheck_runs_the_binary(astgrep_box: DockerSandbox) -> None:
    ok, detail = astgrep_selfcheck(astgrep_box)
    assert ok, detail
    assert detail == f"ast-grep {astgrep_box.image_labels()[ASTGREP_LABEL]}"


def test_selfcheck_fails_on_the_base_image(docker_sandbox: DockerSandbox) -> None:
    ok, detail = astgrep_selfcheck(docker_sandbox)
    assert not ok and "No such file" in detail
    assert ASTGREP_LABEL not in docker_sandbox.image_labels()


def test_sandbox_check_adds_the_binary_case_only_for_images_that_carry_it(
    astgrep_box: DockerSandbox, docker_sandbox: DockerSandbox
) -> None:
    from sandbox.battery import BatteryReport
    from sandbox.cli import _check_astgrep

    with_tool = BatteryReport("docker", astgrep_box.image_id, [], [], 0.0)
    _check_astgrep(astgrep_box, with_tool)
    assert [(c.name, c.ok) for c in with_tool.cases] == [("ast_grep_binary_runs", True)]
    without = BatteryReport("docker", docker_sandbox.image_id, [], [], 0.0)
    _check_astgrep(docker_sandbox, without)
    assert without.cases == [] and without.ok
