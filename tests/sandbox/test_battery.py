"""The battery has teeth: a sandbox that lies is caught (a deliberately broken stub, named so)."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.base import ExecResult, ExecStatus, Program, Sandbox
from sandbox.battery import hostile_cases, run_battery


class AlwaysPassesStub(Sandbox):
    """A broken sandbox that never runs anything and claims every program passed."""

    kind = "docker"

    @property
    def parallelism(self) -> int:
        return 1

    def run(
        self,
        programs: Sequence[Program],
        *,
        timeout_s: float = 1.0,
        memory_mb: int = 256,
        output_cap: int = 65536,
    ) -> list[ExecResult]:
        return [
            ExecResult(p.id, ExecStatus.PASSED, 0, "", "", False, 0.0, "docker") for p in programs
        ]


class DropsResultsStub(AlwaysPassesStub):
    """A broken sandbox that loses the last result."""

    def run(self, programs: Sequence[Program], **kw: object) -> list[ExecResult]:  # type: ignore[override]
        return super().run(programs)[:-1] if len(programs) > 4 else super().run(programs)


def test_cases_cover_the_issue_list() -> None:
    names = {c.name for c in hostile_cases("t", secret_path="/s", port=1)}
    required = {
        "fork_bomb", "memory_bomb", "huge_single_allocation", "infinite_loop", "sleep_past_timeout",
        "infinite_stdout", "huge_single_line", "stderr_flood", "write_root", "write_etc",
        "write_proc",
        "read_host_secret", "tcp_to_host_loopback", "tcp_external", "dns_lookup", "os_exit_nonzero",
        "sigkill_self", "sigstop_self", "kill_driver", "setrlimit_raise", "deep_recursion",
        "read_stdin_forever", "zombie_children", "daemonised_child", "tmpfs_fill_many_files",
        "leave_files_for_next", "change_env_and_cwd", "ctypes_segfault", "setrecursionlimit_abuse",
        "threads_outlive_program", "non_utf8_output", "success_marker_then_fail",
    }  # fmt: skip
    assert required <= names
    assert len(names) >= 30


def test_lying_sandbox_fails_the_battery() -> None:
    report = run_battery(AlwaysPassesStub())
    assert not report.ok
    wrong = {c.name for c in report.failures}
    assert {"fork_bomb", "memory_bomb", "infinite_loop", "ctypes_segfault"} <= wrong
    assert "success_marker_then_fail" in wrong


def test_dropped_result_is_a_host_problem() -> None:
    report = run_battery(
        DropsResultsStub(), only=["write_root", "os_exit_nonzero", "ctypes_segfault"]
    )
    assert any("lost" in p for p in report.host_problems)
    assert any(c.got == "missing" for c in report.cases)
