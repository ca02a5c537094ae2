"""The GRPO execution reward cannot be hacked by forging the tests (sandbox/guard.py).

A policy trained on a 0/1 "tests pass" reward learns whatever makes the tests pass;
an ``__eq__`` that always holds or a rebound builtin would be such a policy's best
move.  Each forgery below scores 1 on the unguarded ``completion + tests`` program
(shown here, so the attacks are real) and 0 under :class:`ExecutionReward`.  The local
sandbox runs them (the reward's isolation is the same code path as Docker's);
``test_grpo_sandbox_smoke.py`` covers the Docker pool.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.base import ExecStatus, Program, Sandbox
from sandbox.local import LocalSandbox
from trainers.code_edit.exec_reward import ExecutionReward

TESTS = (
    "import math\nassert add(2, 3) == 5\nassert abs(half(3) - 1.5) < 1e-9\n"
    "assert math.fabs(half(4) - 2.0) < 1e-9\n"
)
HONEST = "def add(a, b):\n    return a + b\n\ndef half(x):\n    return x / 2\n"
_E = "class E:\n    def __eq__(self, other):\n        return True\n"
FORGERIES = {
    "__eq__ always true": "def add(a, b):\n    return E()\n"
    + _E
    + "def half(x):\n    return x / 2\n",
    "int subclass __eq__": (
        "class I(int):\n    __eq__ = lambda s, o: True\n    __hash__ = int.__hash__\n"
        "def add(a, b):\n    return I(0)\ndef half(x):\n    return x / 2\n"
    ),
    "builtins.abs and math.fabs rebound": (
        "import builtins, math\nbuiltins.abs = lambda *a: 0\nmath.fabs = lambda x: 0.0\n"
        "def add(a, b):\n    return 5\ndef half(x):\n    return 0\n"
    ),
    "module-level abs shadows the builtin": (
        "abs = lambda *a: 0\nimport math\nmath.fabs = lambda x: 0.0\n"
        "def add(a, b):\n    return 5\ndef half(x):\n    return 0\n"
    ),
    "float subclass __sub__": (
        "class F(float):\n    __sub__ = lambda s, o: 0.0\n"
        "def add(a, b):\n    return 5\ndef half(x):\n    return F(9.0)\n"
    ),
}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sb = LocalSandbox(pool_size=2)
    try:
        yield sb
    finally:
        sb.close()


def test_forgeries_pass_the_unguarded_program(box: Sandbox) -> None:
    """Without the guard, these would be rewarded: the reward-hacking path is real."""
    programs = [
        Program(f"{c}\n\n{TESTS}", id=n) for n, c in FORGERIES.items() if "rebound" not in n
    ]
    results = box.run(programs, timeout_s=10)
    assert all(r.status is ExecStatus.PASSED for r in results), [r.detail for r in results]


def test_forgeries_score_zero_and_honest_code_one(box: Sandbox) -> None:
    reward = ExecutionReward(box)
    completions = [HONEST, *FORGERIES.values(), HONEST]
    scores = reward(["p"] * len(completions), completions, tests=[TESTS] * len(completions))
    assert scores == [1.0] + [0.0] * len(FORGERIES) + [1.0]
    assert reward.statuses == {"passed": 2, "failed": len(FORGERIES)}
