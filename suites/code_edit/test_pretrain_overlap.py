"""``pretrain_overlap``: no held-out code-edit record shares code with the base model's
pretraining corpus (gates/code_edit.yaml).

The corpus is the one the model subject carries beside its weights
(``train_corpus.jsonl``, written by the ``tiny-code`` build), read here — not
regenerated — and its digest is checked against the digest the build manifest
recorded, so the gate judges the texts the model was trained on.  A checkpoint
without that file has an unknown corpus: the gate is MISSING for it, never PASS.

Control: the same rows plus one test record whose post-code is a pretraining
document (a bug fix of a function the base has read) must FAIL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.contamination import NGRAM_N, normalize_words, read_corpus
from harness.decision import Verdict
from harness.evaluators.code_edit import load_rows, pretrain_overlap_outcomes
from harness.gate import Gate

pytestmark = [pytest.mark.phase("code_edit"), pytest.mark.xdist_group("code_edit")]

CORPUS_FILE = "train_corpus.jsonl"  # trainers.tiny.TRAIN_CORPUS_FILE (suites read, not import)
BUILD_FILE = "tiny_build.json"


@dataclass(frozen=True)
class PretrainCorpus:
    """The base model's pretraining texts and where they came from."""

    docs: list[str]
    path: Path
    recorded_digest: str | None  # what the model's build manifest says it trained on


@pytest.fixture(scope="session")
def pretrain_corpus(model_source: Any) -> PretrainCorpus | None:
    """The corpus the model subject carries (None when it carries none)."""
    if model_source.kind == "endpoint":
        return None
    where = Path(model_source.location)
    path = where / CORPUS_FILE
    if not path.is_file():
        return None
    recorded = None
    build = where / BUILD_FILE
    if build.is_file():
        manifest = json.loads(build.read_text(encoding="utf-8"))
        recorded = (manifest.get("corpus") or {}).get("digest")
    return PretrainCorpus(list(read_corpus(path)), path, recorded)


def _need(
    corpus: PretrainCorpus | None, model_source: Any, gate: Gate | None = None
) -> PretrainCorpus:
    """The corpus, else skip: the gate is MISSING (a control just makes no claim)."""
    if corpus is None:
        reason = (
            f"the pretraining corpus of {model_source.label} is unknown (no {CORPUS_FILE} "
            "beside its weights), so held-out overlap cannot be checked"
        )
        if gate is not None:
            gate.no_claim(reason, subject="pretrained_record")
        pytest.skip(reason)
    return corpus


def _check(
    gate: Gate,
    rows: list[NormalizedRecord],
    corpus: PretrainCorpus,
    *,
    subject: str,
    expect: Verdict | None = None,
) -> None:
    outcomes, report = pretrain_overlap_outcomes(rows, corpus.docs)
    if corpus.recorded_digest is not None and corpus.recorded_digest != report.corpus_digest:
        pytest.fail(
            f"{corpus.path} hashes to {report.corpus_digest[:19]}…, but the model's "
            f"{BUILD_FILE} records {corpus.recorded_digest[:19]}…: the corpus beside the "
            "weights is not the one it trained on; rebuild the model"
        )
    gate.check(
        outcomes,
        subject=subject,
        expect=expect,
        data_digest=report.corpus_digest,
        extra={
            **report.summary(),
            "corpus_path": str(corpus.path),
            "corpus_digest_recorded_by_model": corpus.recorded_digest,
            "by_split": {
                s.value: sum(1 for r in report.records if r.split == s.value)
                for s in (Split.DEV, Split.TEST)
            },
        },
    )


@pytest.mark.gate("pretrain_overlap")
def test_pretrain_overlap(
    gate: Gate, code_edit_data: Path, pretrain_corpus: PretrainCorpus | None, model_source: Any
) -> None:
    corpus = _need(pretrain_corpus, model_source)
    _check(gate, load_rows(code_edit_data), corpus, subject="heldout")


def _pretrained_record(docs: list[str]) -> NormalizedRecord:
    """A test record whose answer is a pretraining document (long enough for a 13-gram)."""
    doc = next(d for d in docs if len(normalize_words(d)) >= 2 * NGRAM_N)
    return NormalizedRecord.build(
        id="control/pretrained",
        source="control",
        language="python",
        instruction="Fix the bug.",
        pre_code="# planted: a pretraining document as the answer\n" + doc,
        post_code=doc,
        split=Split.TEST,
    )


@pytest.mark.gate("pretrain_overlap")
def test_pretrain_overlap_control_pretrained_record(
    gate: Gate, code_edit_data: Path, pretrain_corpus: PretrainCorpus | None, model_source: Any
) -> None:
    corpus = _need(pretrain_corpus, model_source, gate)
    rows = [*load_rows(code_edit_data), _pretrained_record(corpus.docs)]
    _check(gate, rows, corpus, subject="pretrained_record", expect=Verdict.FAIL)
