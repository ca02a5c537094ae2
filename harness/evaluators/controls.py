"""Control subjects that prove the code-gen gates can both PASS and FAIL.

A gate that has never been seen to pass and fail proves nothing.  Two
subjects with known ground truth run through the *same* pipeline as a model
(sandbox execution, estimators, decisions):

* ``oracle`` — every sample is the task's canonical solution.  All accuracy
  gates must PASS; if one does not, the harness (sandbox, program assembly,
  estimator) is broken and the suite reports a harness error.  The uplift gate
  is the exception by construction: at pass@1 = 1 there is no headroom, so
  pass@16 − pass@1 = 0 and the oracle must FAIL it.
* ``mutant`` — canonical solutions with seeded faults.  Exactly
  ``round(broken_fraction · N)`` tasks (chosen by seed, independent of task
  order) are *flaky-broken*: each of their samples independently carries a
  fault with probability ``fault_rate``.  The rest are intact.  Defaults
  (0.8, 0.85) give pass@1 ≈ 0.2 + 0.8·0.15 = 0.32, whose upper bound on 164
  tasks sits well below the 0.45 fallback even at a Bonferroni-split α, so
  pass@1 must FAIL; and pass@16 ≈ 0.2 + 0.8·(1 − 0.85¹⁶) ≈ 0.95, so the uplift
  gate must PASS — the pass the oracle cannot show.  (A 60 % broken mutant, as
  first suggested, lands at pass@1 ≈ 0.40 and its bound straddles 0.45 at
  Bonferroni α: an INCONCLUSIVE control proves nothing.)

Faults are real code mutations of the canonical body, not labels: an early
``return None``, a raised exception, or a flipped comparison/arithmetic
operator.  Which samples fail is therefore *measured* in the sandbox, never
assumed — an operator flip the tests do not catch simply counts as a pass.
"""

from __future__ import annotations

import ast
import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from harness.decision import Verdict
from harness.errors import HarnessError
from harness.evaluators.humaneval import HumanEvalTask

__all__ = [
    "CONTROL_EXPECTATIONS",
    "ControlKind",
    "FaultKind",
    "MutantControl",
    "OracleControl",
    "inject_fault",
]


#: What each control must show on the code-gen gates (gates/codegen.yaml).
#: The oracle passes every accuracy gate except uplift (at pass@1 = 1 there is
#: no headroom: pass@16 − pass@1 = 0, so it must FAIL).  Its latencies are real
#: sandbox executions; it claims only what holds on any sane machine — one
#: program in flight answers within 0.5 s and a task's whole demo flow within
#: 8 s.  Under 8 or 32 concurrent programs the answer depends on the machine's
#: cores and load, which is not ground truth, so it makes no claim there.  The
#: mutant fails pass@1 and passes pass@16 and the uplift gate; elsewhere its
#: value depends on which faults the hidden tests catch, so no claim.
CONTROL_EXPECTATIONS: dict[str, dict[str, Verdict]] = {
    "oracle": {
        "pass_at_1": Verdict.PASS,
        "pass_at_4": Verdict.PASS,
        "pass_at_16": Verdict.PASS,
        "uplift_16_vs_1": Verdict.FAIL,
        "best_of_16": Verdict.PASS,
        "latency_p95_normal": Verdict.PASS,
        "demo_e2e_p95": Verdict.PASS,
    },
    "mutant": {
        "pass_at_1": Verdict.FAIL,
        "pass_at_16": Verdict.PASS,
        "uplift_16_vs_1": Verdict.PASS,
    },
}


class ControlKind(StrEnum):
    ORACLE = "oracle"
    MUTANT = "mutant"


class FaultKind(StrEnum):
    RETURN_NONE = "return_none"
    RAISE = "raise"
    FLIP_OPERATOR = "flip_operator"


def _unit(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) from its parts (seed, task, sample)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class OracleControl:
    """Every sample is the canonical solution."""

    name: str = "oracle"

    def identity(self) -> str:
        return "control:oracle:canonical_solution"

    def completions(self, task: HumanEvalTask, n: int) -> list[str]:
        return [task.canonical_solution] * n


@dataclass(frozen=True)
class MutantControl:
    """Canonical solutions with seeded faults in a fixed fraction of tasks (see module doc)."""

    seed: int = 0
    broken_fraction: float = 0.8
    fault_rate: float = 0.85
    name: str = "mutant"

    def __post_init__(self) -> None:
        for field, value in (
            ("broken_fraction", self.broken_fraction),
            ("fault_rate", self.fault_rate),
        ):
            if not 0.0 <= value <= 1.0:
                raise HarnessError(f"MutantControl.{field}={value!r} must be within [0, 1]")

    def identity(self) -> str:
        return (
            f"control:mutant:seed={self.seed}:broken_fraction={self.broken_fraction}"
            f":fault_rate={self.fault_rate}"
        )

    def broken_tasks(self, tasks: Sequence[HumanEvalTask]) -> frozenset[str]:
        """Exactly ``round(broken_fraction · len(tasks))`` task ids, chosen by seed."""
        ranked = sorted(tasks, key=lambda t: _unit(self.seed, "task", t.task_id))
        count = round(self.broken_fraction * len(tasks))
        return frozenset(t.task_id for t in ranked[:count])

    def sample_is_faulty(self, task_id: str, sample: int) -> bool:
        return _unit(self.seed, "sample", task_id, sample) < self.fault_rate

    def completions_for(self, task: HumanEvalTask, n: int, *, broken: bool) -> list[str]:
        """The ``n`` samples of one task; ``broken`` says whether it is a flaky-broken task."""
        out: list[str] = []
        for sample in range(n):
            if broken and self.sample_is_faulty(task.task_id, sample):
                kinds = list(FaultKind)
                kind = kinds[int(_unit(self.seed, "kind", task.task_id, sample) * len(kinds))]
                out.append(inject_fault(task, kind))
            else:
                out.append(task.canonical_solution)
        return out


_CMP_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_BIN_FLIPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
}


class _FlipFirst(ast.NodeTransformer):
    """Flip the first comparison or arithmetic operator met in source order."""

    def __init__(self) -> None:
        self.done = False

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if not self.done:
            cmp = _CMP_FLIPS.get(type(node.ops[0]))
            if cmp is not None:
                node.ops[0] = cmp()
                self.done = True
        self.generic_visit(node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if not self.done:
            op = _BIN_FLIPS.get(type(node.op))
            if op is not None:
                node.op = op()
                self.done = True
        self.generic_visit(node)
        return node


def inject_fault(task: HumanEvalTask, kind: FaultKind) -> str:
    """The canonical body of ``task`` with one fault of ``kind``, still a valid body.

    ``FLIP_OPERATOR`` falls back to ``RETURN_NONE`` when the body has no
    operator to flip, so every fault is a real change to the code.
    """
    body = task.canonical_solution
    if kind is FaultKind.RETURN_NONE:
        return "    return None\n" + body
    if kind is FaultKind.RAISE:
        return "    raise RuntimeError('seeded fault')\n" + body
    tree = ast.parse("def __seeded__():\n" + body)
    flipper = _FlipFirst()
    flipper.visit(tree)
    if not flipper.done:
        return inject_fault(task, FaultKind.RETURN_NONE)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    code = "\n".join(ast.unparse(stmt) for stmt in func.body)
    return textwrap.indent(code, "    ") + "\n"
