"""The input model: forge's champion when it exists, else a tiny Llama built and pretrained here.

The forge phase publishes its champion as an HF checkpoint directory
``<models_dir>/forge/champion`` with ``champion.json`` beside it (in
``<models_dir>/forge``).  Its vocabulary is either a saved HF tokenizer in the
directory or forge's ``forge_vocab.json`` (``{"encoding": "word-digit-lsb-v1",
"tokens": [...]}``), which :func:`trainers.quiet_star.tokens.build_tokenizer` turns
into the same tokenizer this phase uses.  Without a champion, a tiny Llama with the
same encoding is built from the training questions and pretrained on direct answers,
and the evidence says so (``source: "embedded"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.data.arithmetic import ArithmeticItem
from harness.errors import DataValidationError
from trainers.quiet_star.tokens import ENCODING, build_tokenizer, fit_vocab

__all__ = ["InputModel", "champion_dir", "load_champion", "tiny_model"]


@dataclass
class InputModel:
    """A causal LM, its tokenizer and where it came from (for the evidence)."""

    model: Any
    tokenizer: Any
    source: str  # "champion" | "embedded"
    info: dict[str, Any]


def champion_dir(models_dir: Path) -> Path:
    """``<models_dir>/forge/champion`` (the forge phase's output)."""
    return models_dir / "forge" / "champion"


def load_champion(path: Path) -> InputModel:
    """Load the forge champion (module doc); a broken directory is an error naming the fix."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf import quiet_progress

    meta_file = path.parent / "champion.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    vocab_file = path / "forge_vocab.json"
    if vocab_file.is_file():
        spec = json.loads(vocab_file.read_text(encoding="utf-8"))
        if spec.get("encoding") != ENCODING or not isinstance(spec.get("tokens"), list):
            raise DataValidationError(
                f"{vocab_file}: field 'encoding'={spec.get('encoding')!r}; this phase reads "
                f"{ENCODING!r} token lists (or a saved HF tokenizer in {path})"
            )
        tokenizer = build_tokenizer([str(t) for t in spec["tokens"]])
    elif (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path)
    else:
        raise DataValidationError(
            f"{path}: no forge_vocab.json and no HF tokenizer; save the champion's vocabulary "
            "beside its weights"
        )
    with quiet_progress():
        model = AutoModelForCausalLM.from_pretrained(path)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise DataValidationError(
            f"{path}: the model has {model.get_input_embeddings().weight.shape[0]} embedding "
            f"rows but the vocabulary {len(tokenizer)} tokens; they come from different runs"
        )
    model.eval()
    return InputModel(model, tokenizer, "champion", {"path": str(path), "champion": meta})


def tiny_model(
    train: Sequence[ArithmeticItem], *, hidden: int, layers: int, heads: int, seed: int
) -> InputModel:
    """A randomly initialised tiny Llama over the word/digit vocabulary of ``train``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokens = fit_vocab(it.question for it in train)
    tokenizer = build_tokenizer(tokens)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokens), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=256, pad_token_id=0, bos_token_id=0,
        eos_token_id=tokens.index("<eos>"), tie_word_embeddings=False,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg)
    return InputModel(model, tokenizer, "embedded", {"vocab_size": len(tokens)})
