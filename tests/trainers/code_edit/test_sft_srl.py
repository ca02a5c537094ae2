"""Code-edit SFT (TRL SFTTrainer + LoRA) and SRL (TRL GRPOTrainer) on a tiny model.

Asserts behaviour, not speed: LoRA weights move and the merged checkpoint differs
from the base, a second call is served from the cache by key, held-out rows are
refused, and config errors name the field.  SRL trains on the filtered SRL dataset
(``train.jsonl`` of ``SRLStep`` rows): its digest is in the cache key and its
identity in the artifact's metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.trajectory import SRLDataset, SRLStep, load_srl_dataset
from harness.errors import TrainerError
from trainers.code_edit.sft import CodeEditSFTConfig, CodeEditSFTTrainer
from trainers.code_edit.srl import SRLConfig, SRLTrainer, action_exact, srl_reward
from trainers.tiny import TinyModelConfig, build_tiny_model

TINY = TinyModelConfig(
    vocab_size=300,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    corpus_snippets=10,
)
RULE = {"id": "rename-x", "language": "python", "rule": {"pattern": "x"}, "fix": "y"}


def _records(n: int = 4, split: Split = Split.TRAIN) -> list[NormalizedRecord]:
    return [
        NormalizedRecord.build(
            id=f"r{i}",
            source="unit",
            language="python",
            instruction="Rename the variable `x` to `y`.",
            pre_code=f"def f{i}(x):\n    return x + {i}\n",
            post_code=f"def f{i}(y):\n    return y + {i}\n",
            action=RULE,
            split=split,
        )
        for i in range(n)
    ]


def _srl_data(root: Path, n: int = 4, split: Split = Split.TRAIN) -> SRLDataset:
    """The filter's output shape: ``<root>/<split>.jsonl`` of verified steps."""
    gold = "fix: y\nid: rename-x\nlanguage: python\nrule:\n  pattern: x\n"
    steps = [
        SRLStep(
            id=f"program:codemod/r{i}",
            record_id=f"r{i}",
            source="unit",
            split=split,
            teacher="program:codemod",
            language="python",
            instruction="Rename the variable `x` to `y`.",
            pre_code=f"def f{i}(x):\n    return x + {i}\n",
            action=gold,
            verified="matches_post_code",
        )
        for i in range(n)
    ]
    root.mkdir(parents=True, exist_ok=True)
    text = "".join(s.model_dump_json() + "\n" for s in steps)
    (root / f"{split.value}.jsonl").write_text(text, encoding="utf-8")
    return load_srl_dataset(root, split)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(TINY, out_dir=tmp_path_factory.mktemp("tiny"))


def _lora_b(path: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    weights = load_file(str(path / "adapter" / "adapter_model.safetensors"))
    return {k: v for k, v in weights.items() if "lora_B" in k}


def test_stage0_lora_moves_weights_merges_and_caches(tiny_base: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    cfg = CodeEditSFTConfig(tag="t0", lora_r=4, max_steps=3, batch_size=2, warmup_steps=0)
    trainer = CodeEditSFTTrainer(cfg, models_dir=tmp_path, progress=lambda _m: None)
    art = trainer.train(_records(), base_dir=tiny_base)
    assert not art.cached and art.metrics["rows"] == 4
    lora_b = _lora_b(art.path)
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b.values())  # type: ignore[attr-defined]
    before = AutoModelForCausalLM.from_pretrained(tiny_base).state_dict()
    after = AutoModelForCausalLM.from_pretrained(art.path / "model").state_dict()
    assert set(before) == set(after)  # merged: a plain transformers checkpoint
    assert any(not torch.equal(before[k], after[k]) for k in before)
    again = trainer.train(_records(), base_dir=tiny_base)
    assert again.cached and again.digest == art.digest and again.path == art.path


def test_stage1_trains_on_actions_only(tiny_base: Path, tmp_path: Path) -> None:
    rows = _records(2)
    rows.append(rows[0].model_copy(update={"id": "no-action", "action": None}))
    cfg = CodeEditSFTConfig(
        tag="t1", target=Target.ACTION, lora_r=2, max_steps=2, batch_size=2, warmup_steps=0
    )
    art = CodeEditSFTTrainer(cfg, models_dir=tmp_path, progress=lambda _m: None).train(
        rows, base_dir=tiny_base
    )
    assert art.metrics["rows"] == 2 and art.metrics["target"] == "action"


def test_heldout_rows_are_refused(tiny_base: Path, tmp_path: Path) -> None:
    cfg = CodeEditSFTConfig(max_steps=2, warmup_steps=0)
    with pytest.raises(TrainerError, match="not in the train split"):
        CodeEditSFTTrainer(cfg, models_dir=tmp_path).train(
            _records(2, Split.TEST), base_dir=tiny_base
        )


def test_srl_grpo_logs_curves_and_saves_a_loadable_model(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An untrained model only emits invalid actions (every reward −0.2, zero advantage, no
    update), so the GRPO mechanics are checked with a reward that varies by length."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.code_edit import srl as srl_mod

    def srl_reward(completions: list[object], **_: object) -> list[float]:
        return [len(str(c)) % 7 / 7 for c in completions]

    monkeypatch.setattr(srl_mod, "srl_reward", srl_reward)

    cfg = SRLConfig(max_steps=3, batch_size=4, num_generations=2, max_completion_length=8, lora_r=2)
    data = _srl_data(tmp_path / "srl", n=4)
    trainer = SRLTrainer(cfg, models_dir=tmp_path / "models", progress=lambda _m: None)
    art = trainer.train(data, base_dir=tiny_base)
    assert not art.cached
    assert art.metrics["srl_data"] == data.describe()  # the evidence names what SRL trained on
    assert art.metrics["srl_data"]["rows"] == 4 and art.metrics["prompts"] == 4
    curves = art.metrics["curves"]
    assert len(curves["reward"]) == 3 and len(curves["accuracy"]) == 3
    assert all(0.0 <= r <= 1.0 for r in curves["reward"]), curves
    model = AutoModelForCausalLM.from_pretrained(art.path / "model")
    before = AutoModelForCausalLM.from_pretrained(tiny_base).state_dict()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = trainer.train(_srl_data(tmp_path / "srl", n=4), base_dir=tiny_base)
    assert again.cached and again.path == art.path
    moved = _srl_data(tmp_path / "elsewhere", n=4)  # same bytes in another directory
    reused = trainer.train(moved, base_dir=tiny_base)
    assert reused.cached and reused.metrics["srl_data"]["path"] == str(
        tmp_path / "elsewhere" / "train.jsonl"
    )  # the evidence names the file this run was given, not the builder's
    # one verified step fewer: another dataset digest, so another cache key (not reused)
    other = _srl_data(tmp_path / "srl3", n=3)
    assert other.digest != data.digest
    assert cfg.cache_key(base_digest="b", data_digest=other.digest).key != (
        cfg.cache_key(base_digest="b", data_digest=data.digest).key
    )


def test_srl_refuses_a_non_train_dataset(tiny_base: Path, tmp_path: Path) -> None:
    cfg = SRLConfig(max_steps=3, batch_size=4, num_generations=2)
    dev = _srl_data(tmp_path, n=2, split=Split.DEV)
    with pytest.raises(TrainerError, match=r"train only on the filter's train\.jsonl"):
        SRLTrainer(cfg, models_dir=tmp_path).train(dev, base_dir=tiny_base)
    empty = _srl_data(tmp_path / "empty", n=0)
    with pytest.raises(TrainerError, match="no verified teacher steps"):
        SRLTrainer(cfg, models_dir=tmp_path).train(empty, base_dir=tiny_base)


# ------------------------------------------------------------------ config validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_steps": 5, "warmup_steps": 5}, "warmup_steps"),
        ({"target_modules": ()}, "target_modules"),
        ({"tag": "Bad Tag"}, "tag"),
        ({"lora_alpha": 0}, "lora_alpha"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_sft_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CodeEditSFTConfig.model_validate(kwargs)


def test_srl_config_num_generations_must_divide_batch() -> None:
    with pytest.raises(ValidationError, match="num_generations=3 must divide batch_size=8"):
        SRLConfig(batch_size=8, num_generations=3)
    with pytest.raises(ValidationError, match="num_generations"):
        SRLConfig(num_generations=1)


# ------------------------------------------------------------------ TRL reward functions


def test_srl_reward_function_branches() -> None:
    gold = "fix: y\nid: rename-x\nlanguage: python\nrule:\n  pattern: x\n"
    wrong_fix = gold.replace("fix: y", "fix: z")
    completions = [
        [{"role": "assistant", "content": gold}],
        [{"role": "assistant", "content": "not: [yaml"}],
        [{"role": "assistant", "content": wrong_fix}],
    ]
    rewards = srl_reward(completions, [gold] * 3)
    assert rewards[0] == 1.0 and rewards[1] == -0.2
    # S_field: language, rule.pattern, fix -> 2/3 agree; S_str: one char of 56 differs -> 55/56
    assert rewards[2] == pytest.approx(0.7 * 2 / 3 + 0.3 * 55 / 56)
    assert action_exact(completions, [gold] * 3) == [1.0, 0.0, 0.0]
