"""The code-gen evaluator: a sandbox failure or a forged exit costs one item, never the run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from harness.evaluators.codegen import CodegenConfig, ExecMemo
from harness.evaluators.humaneval import build_program, load_tasks
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox
from sandbox.local import LocalSandbox

TASKS = load_tasks(limit=2)


class _FlakySandbox(Sandbox):
    """Runs nothing: every program whose source contains ``BREAK`` is a sandbox_error."""

    kind = "fake"

    @property
    def parallelism(self) -> int:
        return 1

    def run(self, programs: Sequence[Program], **_: object) -> list[ExecResult]:
        out = []
        for p in programs:
            broken = "BREAK" in p.source
            out.append(
                ExecResult(
                    program_id=p.id,
                    status=ExecStatus.SANDBOX_ERROR if broken else ExecStatus.PASSED,
                    exit_code=None if broken else 0,
                    stdout="",
                    stderr="",
                    truncated=False,
                    duration_s=0.0,
                    sandbox_kind=self.kind,
                    detail="lost twice: worker died" if broken else "ran to its end",
                    attempts=2 if broken else 1,
                )
            )
        return out


@pytest.fixture(scope="module")
def local_box() -> Iterator[Sandbox]:
    box = LocalSandbox(pool_size=1)
    try:
        yield box
    finally:
        box.close()


def test_a_sandbox_error_is_recorded_as_that_items_failure_not_raised() -> None:
    memo = ExecMemo()
    ok = build_program(TASKS[0], TASKS[0].canonical_solution)
    broken = build_program(TASKS[0], "    pass  # BREAK\n")
    res = memo.run(_FlakySandbox(), [ok, broken, ok], config=CodegenConfig())
    assert [r.status for r in res] == ["passed", "sandbox_error", "passed"]
    assert [r.passed for r in res] == [True, False, True]
    assert "lost twice" in res[1].detail and memo.sandbox_errors == 1


class TestForgedExitsAreFailuresInTheEvaluator:
    VARIANTS = (
        "    return None\nimport sys\nsys.exit(0)\n",
        "    return None\nimport os\nos._exit(0)\n",
        "    import sys\n    sys.exit(0)\n",
        "    return None\nraise SystemExit\n",
    )

    def test_variants_are_incomplete_and_not_passed(self, local_box: Sandbox) -> None:
        memo = ExecMemo()
        sources = [build_program(TASKS[1], v) for v in self.VARIANTS]
        res = memo.run(local_box, sources, config=CodegenConfig(timeout_s=10))
        assert [r.status for r in res] == ["incomplete"] * len(self.VARIANTS)
        assert not any(r.passed for r in res)

    def test_unencodable_completion_is_rejected_and_the_batch_goes_on(
        self, local_box: Sandbox
    ) -> None:
        memo = ExecMemo()
        sources = [
            build_program(TASKS[1], "    return '\ud800'\n"),
            build_program(TASKS[1], TASKS[1].canonical_solution),
        ]
        res = memo.run(local_box, sources, config=CodegenConfig(timeout_s=10))
        assert [r.status for r in res] == ["rejected", "passed"]
        assert "not encodable" in res[0].detail
