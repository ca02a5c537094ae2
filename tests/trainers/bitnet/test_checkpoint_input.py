"""``--model`` input: any HF causal LM checkpoint + a question/answer task, end to end.

A tiny character-level Llama and its tokenizer are trained for a few seconds on a
copy task and saved with ``save_pretrained`` in ``tmp_path``; the compression suite
then runs on it in a subprocess (``--model``, ``--compression-task``, small QAT
settings) and its evidence is read back.  Bad inputs are errors that name the option
or file and the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.data.arithmetic import ArithmeticItem
from harness.errors import DataValidationError
from trainers.bitnet.inputs import InputError, check_checkpoint, read_champion
from trainers.bitnet.qa_task import QAFormat, encode, exact_match, load_task, qa_loss

ROOT = Path(__file__).parents[3]
CHARS = list("0123456789 \nA:abcdefghijklmnopqrstuvwxyz")


def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>")


def _items(n: int, seed: int) -> list[ArithmeticItem]:
    g = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, 10, (n, 3), generator=g).tolist()
    return [ArithmeticItem(f"copy {a}{b}{c}", str(a)) for a, b, c in digits]


def _checkpoint(root: Path, *, steps: int) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(CHARS) + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg)
    train = encode(_items(512, 1), tok, QAFormat()).packed()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for i in range(steps):
        loss = qa_loss(model, train[(i * 32) % 480 : (i * 32) % 480 + 32])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    model.eval()
    out = root / "ckpt"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _task_file(root: Path, n: int = 300) -> Path:
    path = root / "task.jsonl"
    rows = [{"question": it.question, "answer": it.answer} for it in _items(n, 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_checkpoint_errors_name_the_option_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--model .*no such directory.*save_pretrained"):
        check_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no config\.json"):
        check_checkpoint(tmp_path / "empty")
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=10, dim=8, n_layers=1, n_heads=1, hidden_dim=8).save_pretrained(
        tmp_path / "encoder"
    )
    with pytest.raises(InputError, match=r"model_type='distilbert'.*not a causal LM"):
        check_checkpoint(tmp_path / "encoder")
    ckpt = _checkpoint(tmp_path, steps=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (ckpt / name).unlink(missing_ok=True)
    with pytest.raises(InputError, match=r"no tokenizer AutoTokenizer can load"):
        check_checkpoint(ckpt)


def test_task_file_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "x"}\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"bad\.jsonl:1: field 'answer'='x'"):
        load_task(str(bad))
    few = _task_file(tmp_path, n=10)
    with pytest.raises(DataValidationError, match=r"10 rows; at least 50"):
        load_task(str(few))
    with pytest.raises(DataValidationError, match=r"--compression-task .*no such file"):
        load_task(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataValidationError, match=r"levels must be"):
        load_task("arithmetic:7")


def test_champion_manifest_is_required_and_checked(tmp_path: Path) -> None:
    manifest, why = read_champion(tmp_path)
    assert manifest is None and "no forge champion" in why
    champ = tmp_path / "forge" / "champion"
    champ.mkdir(parents=True)
    (champ / "champion.json").write_text('{"task": "arithmetic"}', encoding="utf-8")
    manifest, why = read_champion(tmp_path)
    assert manifest is None and "missing field(s) cache_key, held_out_accuracy" in why


def test_exact_match_is_greedy_decoding(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = _checkpoint(tmp_path, steps=120)
    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt).eval()
    items = _items(40, 3)
    enc = encode(items, tok, QAFormat())
    hits = exact_match(model, enc)
    for i, it in enumerate(items[:12]):
        prompt = torch.tensor([enc.ids[i, : enc.spans[i][0]].tolist()])
        s, e = enc.spans[i]
        out = model.generate(prompt, max_new_tokens=e - s, do_sample=False, pad_token_id=0)
        greedy = out[0, prompt.shape[1] :].tolist() == enc.ids[i, s:e].tolist()
        assert bool(hits[i]) == greedy, it
    assert hits.mean() > 0.5  # the copy task is learnt: the end-to-end test below needs it


def _run_suite(tmp_path: Path, *args: str) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    out = tmp_path / "report"
    cmd = [
        sys.executable, "-m", "pytest", str(ROOT / "suites" / "compression"),
        "-p", "no:cacheprovider", "-k", "not decode_speedup", "--evidence-dir", str(out),
        "--cache-dir", str(tmp_path / "cache"), "--rootdir", str(ROOT), "-q", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    ev = out / "evidence.jsonl"
    records = [json.loads(line) for line in ev.read_text().splitlines()] if ev.exists() else []
    assert records or proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, records


QAT = json.dumps(
    {"stages": 2, "steps_per_stage": 40, "stage_rounds": 2, "final_steps": 20, "batch_size": 32,
     "dev_budget": 0.5, "lr": 2e-3}
)  # fmt: skip


def test_model_option_end_to_end(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, steps=120)
    task = _task_file(tmp_path)
    _, records = _run_suite(
        tmp_path, "--model", str(ckpt), "--compression-task", str(task), "--compression-qat", QAT
    )
    by = {(r["gate"], r["subject"]): r for r in records}
    ratio = by[("compression_ratio", "bitnet")]
    assert ratio["extra"]["input"]["kind"] == "checkpoint"
    assert ratio["decision"]["verdict"] in ("PASS", "FAIL")
    ret = by[("accuracy_retention", "bitnet")]
    assert ret["extra"]["task"]["source"] == str(task)
    assert ret["extra"]["fp32_accuracy"] >= 0.5
    assert len(ret["extra"]["ternary_layers"]) + len(ret["extra"]["fallback_layers"]) == 14
    assert ret["estimate"]["n"] == 60  # the 20 % test split of 300 rows, paired
    assert by[("accuracy_retention", "zeroed")]["decision"]["verdict"] == "FAIL"
    assert by[("sparsity", "bitnet")]["estimate"]["value"] > 0.0


def test_weak_model_makes_no_retention_claim(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, steps=1)  # untrained: accuracy ≈ 0
    task = _task_file(tmp_path)
    qat = json.dumps({"stages": 1, "steps_per_stage": 2, "stage_rounds": 1, "final_steps": 2,
                      "batch_size": 8})  # fmt: skip
    code, records = _run_suite(
        tmp_path, "--model", str(ckpt), "--compression-task", str(task), "--compression-qat", qat
    )
    assert code != 0
    assert ("accuracy_retention", "bitnet") not in {(r["gate"], r["subject"]) for r in records}
    account = json.loads((tmp_path / "report" / "gate-accounting.json").read_text())
    status = [
        s for p in account["phases"] for s in p["statuses"] if s["gate"] == "accuracy_retention"
    ]
    assert status and status[0]["status"] == "MISSING"
    assert "full-precision test accuracy" in status[0]["reason"] and "< 0.5" in status[0]["reason"]


def _forge_champion(models_dir: Path, extra_trained: list[str] | None = None) -> Path:
    """A champion written by the forge phase's own publisher (untrained weights); its
    training-question set is forge's toy train split plus ``extra_trained``."""
    from harness.data.arithmetic import make_splits
    from trainers.forge.champion import ChampionManifest, champion_dir, write_champion
    from trainers.forge.digitlm import DigitVocab, make_llama

    items = make_splits({"train": 400})["train"]
    questions = [it.question for it in items] + list(extra_trained or [])
    vocab = DigitVocab.fit(questions)
    model = make_llama(vocab, hidden=16, layers=1, heads=2, seed=0)
    manifest = ChampionManifest(
        cache_key="k", task="arithmetic-word-problems-v1", held_out_accuracy=0.07,
        created_by="test",
    )  # fmt: skip
    return write_champion(
        model, vocab, manifest, directory=champion_dir(models_dir), train_questions=questions
    )


def test_champion_training_questions_are_dropped_from_dev_and_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forge's split and this phase's split are drawn by separate calls: the champion's
    training questions that land in compression dev/test are dropped and counted."""
    from harness.data.arithmetic import question_digest
    from trainers.bitnet import inputs
    from trainers.bitnet.qa_task import load_task

    plain = load_task("arithmetic")
    leaked = [it.question for it in plain.splits["test"][:13]]
    leaked += [it.question for it in plain.splits["dev"][:5]]
    _forge_champion(tmp_path / "models", leaked)
    monkeypatch.setattr(inputs, "MIN_FP_ACCURACY", 0.0)
    inp, task = inputs.default_input(tmp_path / "models", tmp_path / "cache")
    assert inp.kind == "forge" and task is not None
    assert task.excluded == {"dev": 5, "test": 13}
    assert inp.overlap["checked"] is True and inp.overlap["dropped"] == {"dev": 5, "test": 13}
    assert "forge champion's train questions (418 digests" in inp.overlap["from"]
    trained = {question_digest(it.question) for it in _forge_train_items()} | {
        question_digest(q) for q in leaked
    }
    for split in ("dev", "test"):
        assert not {question_digest(it.question) for it in task.splits[split]} & trained
    assert len(task.splits["test"]) == len(plain.splits["test"]) - 13
    assert inp.to_dict()["overlap"]["dropped"]["test"] == 13  # what the evidence records

    # an older champion (no question file in its manifest) is used, with a recorded warning
    manifest_path = tmp_path / "models" / "forge" / "champion.json"
    body = json.loads(manifest_path.read_text())
    del body["train_questions"]
    manifest_path.write_text(json.dumps(body))
    inp, task = inputs.default_input(tmp_path / "models", tmp_path / "cache")
    assert inp.kind == "forge" and task is not None and task.excluded == {}
    assert inp.overlap["checked"] is False and "re-run the forge phase" in inp.overlap["warning"]


def _forge_train_items() -> list:
    from harness.data.arithmetic import make_splits

    return make_splits({"train": 400})["train"]


def test_forge_champion_is_read_in_its_own_encoding_and_used_only_if_accurate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainers.bitnet import inputs
    from trainers.forge.digitlm import DigitVocab

    directory = _forge_champion(tmp_path / "models")
    inp, task = inputs.default_input(tmp_path / "models", tmp_path / "cache")
    assert inp.kind == "embedded" and task is None  # untrained: accuracy ≈ 0 on its dev split
    assert inp.fp_dev_accuracy is not None and inp.fp_dev_accuracy < 0.5
    assert "< 0.5" in inp.reason and "arithmetic-word-problems-v1" in inp.reason
    assert inp.manifest["cache_key"] == "k"

    monkeypatch.setattr(inputs, "MIN_FP_ACCURACY", 0.0)  # the branch a good champion takes
    inp, task = inputs.default_input(tmp_path / "models", tmp_path / "cache")
    assert inp.kind == "forge" and inp.path == str(directory) and task is not None
    assert task.fmt.encoding == "word-digit-lsb-v1"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory)
    item = task.splits["test"][0]
    enc = encode([item], tok, task.fmt)
    ids = enc.ids[0, : enc.spans[0][1]].tolist()
    stored = json.loads((directory / "forge_vocab.json").read_text(encoding="utf-8"))["tokens"]
    vocab = DigitVocab(tuple(stored))  # the ids forge itself trains and judges on
    assert ids == vocab.prompt(item.question) + vocab.target(item.answer)
    assert tok(vocab.render(item.question))["input_ids"] == vocab.prompt(item.question)
