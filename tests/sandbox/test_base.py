from __future__ import annotations

import pytest

from harness.errors import SandboxError
from sandbox.base import ExecResult, ExecStatus, Program, RawOutcome, classify, validate_limits


def raw(**kw: object) -> RawOutcome:
    base: dict[str, object] = dict(
        exit_code=None,
        signal=None,
        timed_out=False,
        memory_error=False,
        oom_killed=False,
        stopped=False,
    )
    base.update(kw)
    return RawOutcome(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (dict(exit_code=0, proof=True), ExecStatus.PASSED),
        # exit 0 alone is not a pass: without the completion proof it is incomplete
        (dict(exit_code=0), ExecStatus.INCOMPLETE),
        (dict(exit_code=0, tampered=True), ExecStatus.INCOMPLETE),
        (dict(exit_code=1, proof=True), ExecStatus.FAILED),
        (dict(signal=9, proof=True), ExecStatus.ERROR),
        (dict(exit_code=1), ExecStatus.FAILED),
        (dict(exit_code=7), ExecStatus.FAILED),
        (dict(signal=9, timed_out=True), ExecStatus.TIMEOUT),
        (dict(exit_code=0, timed_out=True, proof=True), ExecStatus.TIMEOUT),
        (dict(signal=24), ExecStatus.TIMEOUT),
        (dict(signal=9, oom_killed=True), ExecStatus.OOM),
        (dict(exit_code=1, memory_error=True), ExecStatus.OOM),
        # a program cannot turn a pass into anything else by writing the oom marker
        (dict(exit_code=0, memory_error=True, proof=True), ExecStatus.PASSED),
        (dict(signal=11), ExecStatus.ERROR),
        (dict(signal=9, stopped=True), ExecStatus.ERROR),
        (dict(spawn_error="fork failed"), ExecStatus.SANDBOX_ERROR),
        (dict(), ExecStatus.SANDBOX_ERROR),
    ],
)
def test_classify_maps_raw_facts_to_one_status(
    facts: dict[str, object], status: ExecStatus
) -> None:
    got, reason = classify(raw(**facts))
    assert got is status
    assert reason


def test_program_ids_are_unique_and_digest_is_stable() -> None:
    a, b = Program("print(1)"), Program("print(1)")
    assert a.id != b.id
    assert a.digest() == b.digest()
    assert Program("print(1)", stdin="x").digest() != a.digest()


@pytest.mark.parametrize(
    "kw",
    [
        dict(timeout_s=0, memory_mb=256, output_cap=10),
        dict(timeout_s=float("inf"), memory_mb=256, output_cap=10),
        dict(timeout_s=1.0, memory_mb=8, output_cap=10),
        dict(timeout_s=1.0, memory_mb=256, output_cap=-1),
    ],
)
def test_validate_limits_rejects_bad_values_naming_them(kw: dict[str, float]) -> None:
    with pytest.raises(SandboxError, match="invalid"):
        validate_limits(**kw)  # type: ignore[arg-type]


def test_exec_result_to_dict_is_json_ready() -> None:
    r = ExecResult("p", ExecStatus.OOM, 1, "", "MemoryError", False, 0.1, "docker", "sha256:x")
    d = r.to_dict()
    assert d["status"] == "oom" and d["image_id"] == "sha256:x" and d["sandbox_kind"] == "docker"
    assert not r.passed


def test_default_pool_size_is_the_workers_cpu_share(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from harness.settings import reset_settings
    from sandbox.base import default_pool_size

    cpus = len(os.sched_getaffinity(0))
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert default_pool_size() == cpus
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(cpus * 4))
    reset_settings()  # the environment is read once per process (harness.settings)
    assert default_pool_size() == 1
