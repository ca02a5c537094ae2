"""Readiness for RL (note 003 §7): TRL GRPO rollouts rewarded by execution in the Docker sandbox.

A tiny model built in code (``trainers.tiny``) is trained for two GRPO steps on CPU
(``bf16=False``, no gradient checkpointing, ``num_generations`` dividing the
generation batch) with :class:`~trainers.code_edit.exec_reward.ExecutionReward`:
every completion plus its record's tests runs in the hardened Docker pool, 1 when
the tests pass.  A random tiny model writes no passing code, so the test also
shows the same reward object scoring a correct completion 1 and a hostile early
exit 0.  Marked ``docker`` and ``slow``; its wall time is printed (docs/code_edit.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.base import Sandbox
from trainers.code_edit.exec_reward import ExecutionReward

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TASKS = [
    ("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n"),
    ("def is_neg(x):\n    return x > 0\n", "assert is_neg(-1) and not is_neg(2)\n"),
    ("def last(xs):\n    return xs[len(xs)]\n", "assert last([1, 2, 3]) == 3\n"),
    ("def double(x):\n    return x + x + 1\n", "assert double(4) == 8\n"),
]


@pytest.fixture(scope="module")
def pool() -> Iterator[Sandbox]:
    from sandbox.docker_pool import DockerSandbox
    from sandbox.image import ensure_image

    box = DockerSandbox(image=ensure_image(), pool_size=2)
    try:
        yield box
    finally:
        box.close()


def test_execution_reward_needs_proof_of_a_passing_test(pool: Sandbox) -> None:
    reward = ExecutionReward(pool)
    completions = [
        "def add(a, b):\n    return a + b\n",  # correct
        "def add(a, b):\n    return a - b\n",  # still buggy
        "import sys\nsys.exit(0)\n",  # leaves before the tests: no completion proof
        [{"role": "assistant", "content": "def add(a, b):\n    return b + a\n"}],  # chat form
    ]
    tests = [TASKS[0][1]] * 4
    assert reward(["p"] * 4, completions, tests=tests) == [1.0, 0.0, 0.0, 1.0]
    assert reward.statuses == {"passed": 2, "failed": 1, "incomplete": 1}
    with pytest.raises(ValueError, match="'tests' dataset column"):
        reward(["p"], ["x"])


def test_grpo_rollouts_are_rewarded_in_the_docker_sandbox(pool: Sandbox, tmp_path: Path) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from trainers.tiny import TinyModelConfig, build_tiny_model

    torch.manual_seed(0)
    model_dir = build_tiny_model(
        TinyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1),
        out_dir=tmp_path / "tiny",
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = [{"prompt": f"# Fix the bug.\n{pre}# Fixed:\n", "tests": t} for pre, t in TASKS]
    reward = ExecutionReward(pool)
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,  # divides the generation batch (4 prompts' worth per step)
        max_completion_length=24,
        learning_rate=1e-4,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    assert trainer.state.global_step == 2
    assert reward.calls >= 2 and reward.programs == 4 * reward.calls
    assert sum(reward.statuses.values()) == reward.programs
    assert "sandbox_error" not in reward.statuses  # every rollout got a real verdict
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2 and all(0.0 <= h["reward"] <= 1.0 for h in logged)
    print(
        f"\nGRPO smoke: 2 steps in {wall:.1f} s wall; {reward.programs} rollouts executed in "
        f"{reward.calls} sandbox batches, {reward.seconds:.2f} s in the sandbox; "
        f"statuses {reward.statuses}"
    )


def test_reward_shared_by_rollout_threads_gives_each_its_own_verdicts(pool: Sandbox) -> None:
    """Light load: four rollout threads score 8 completions each through one reward."""
    from concurrent.futures import ThreadPoolExecutor

    reward = ExecutionReward(pool)
    good, bad = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"

    def rollout(k: int) -> list[float]:
        completions = [good if (i + k) % 2 == 0 else bad for i in range(8)]
        return reward(["p"] * 8, completions, tests=[TASKS[0][1]] * 8)

    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(rollout, range(4)))
    assert got == [[1.0 if (i + k) % 2 == 0 else 0.0 for i in range(8)] for k in range(4)]
    assert reward.programs == 32 and reward.statuses == {"passed": 16, "failed": 16}
