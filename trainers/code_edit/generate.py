"""The embedded code-edit data set, built offline from the standard library.

Sources (:mod:`trainers.code_edit.heldout`): HumanEval-decontaminated
standard-library code (HumanEval is the codegen phase's benchmark; code sharing a
13-gram with it never enters any split), turned into (a) ``synthetic_codemod``
records by the ast-grep rules of :mod:`trainers.code_edit.codemods`
(ground-truth ``action`` = the rule; train and held-out codemods come from one
population — every short function and method — so the shapes match, checked by
:func:`harness.data.code_edit.shape.shape_parity`) and (b) ``synthetic_bugfix`` records by
:mod:`trainers.code_edit.mutations`, plus (c) doctest-verified
``synthetic_bugfix_tested`` records (:mod:`trainers.code_edit.tested_bugs`).

Splits follow the file partition of :mod:`trainers.code_corpus`: code from the
pretraining part (what the base model ``tiny-code`` trained on) is ``train``
only; code from the reserved part is ``dev`` or ``test`` only, drawn from the
hash of the *original function* (a third dev, two thirds test), so every edit of
one function lands in one split.  Two filters then run on the held-out rows, each
dropping and counting: a row whose pre- or post-code shares a 13-gram with the
base model's pretraining corpus
(:func:`harness.data.code_edit.pretrain_overlap.pretrain_overlap` — the
``pretrain_overlap`` gate re-checks the written data against the corpus the model
carries), and a row that leaks into an earlier split (exact hash or near
duplicate, :func:`harness.data.code_edit.leakage.check_leakage`: different stdlib
functions can be near copies).  The train split is never thinned to make room.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.code_edit.leakage import DEFAULT_THRESHOLD, check_leakage
from harness.data.code_edit.pretrain_overlap import overlapping_ids, pretrain_overlap
from harness.data.code_edit.schema import DatasetMetadata, NormalizedRecord, Split
from harness.data.code_edit.store import dataset_stats, default_root, write_processed
from trainers.code_edit.codemods import CODEMODS, apply_codemods, rule_document
from trainers.code_edit.heldout import Sources, embedded_sources, module_reserved
from trainers.code_edit.mutations import mutate_functions
from trainers.code_edit.tested_bugs import DOCTEST_MODULES, tested_bugs

__all__ = [
    "HELDOUT_TEST_SHARE",
    "Built",
    "build_embedded",
    "build_records",
    "drop_leaking",
    "drop_pretrain_overlap",
    "main",
]

_SPLIT_ORDER = {Split.TRAIN: 0, Split.DEV: 1, Split.TEST: 2}
#: share of the reserved part's functions whose edits are judged (test); the rest is dev
HELDOUT_TEST_SHARE = 2 / 3


@dataclass
class Built:
    """The kept records and what was dropped (ids): pretraining overlap, then leakage."""

    records: list[NormalizedRecord]
    dropped_leaking: list[str] = field(default_factory=list)
    dropped_pretrain_overlap: list[str] = field(default_factory=list)


def _fn_name(text: str) -> str:
    head = text.split("(", 1)[0]
    return head.split()[-1] if head.split() else "function"


def _heldout_split(original: str) -> Split:
    """Dev or test from the hash of the original function (stable across runs)."""
    u = int(hashlib.sha256(original.encode("utf-8")).hexdigest()[:8], 16) / 0x1_0000_0000
    return Split.TEST if u < HELDOUT_TEST_SHARE else Split.DEV


def _split_of(original: str, *, heldout: bool) -> Split:
    return _heldout_split(original) if heldout else Split.TRAIN


def build_records(
    sources: Sources, *, seed: int = 0, doctest_modules: Sequence[str] = DOCTEST_MODULES
) -> list[NormalizedRecord]:
    """Codemod, bug-fix and tested bug-fix records (no filtering yet): train from the
    pretraining part, dev/test from the reserved part."""
    out = _tested_records(seed=seed, modules=doctest_modules)
    out += _codemod_records(sources.train_units, heldout=False)
    out += _codemod_records(sources.heldout_units, heldout=True)
    out += _bugfix_records(sources.train_functions, seed=seed, heldout=False)
    out += _bugfix_records(sources.heldout_functions, seed=seed, heldout=True)
    return out


def _codemod_records(functions: Sequence[str], *, heldout: bool) -> list[NormalizedRecord]:
    out = []
    for p in apply_codemods(functions, codemods=CODEMODS):
        out.append(
            NormalizedRecord.build(
                id=f"codemod/{p.codemod.name}/{hashlib.sha256(p.pre.encode()).hexdigest()[:12]}",
                source="synthetic_codemod",
                language="python",
                instruction=p.codemod.instruction,
                pre_code=p.pre,
                post_code=p.post,
                action=rule_document(p.codemod),
                split=_split_of(p.pre, heldout=heldout),
            )
        )
    return out


def _bugfix_records(
    functions: Sequence[str], *, seed: int, heldout: bool
) -> list[NormalizedRecord]:
    out = []
    for b in mutate_functions(functions, seed=seed):
        m = b.mutation
        out.append(
            NormalizedRecord.build(
                id=f"bugfix/{m.kind}/{hashlib.sha256(b.post.encode()).hexdigest()[:12]}",
                source="synthetic_bugfix",
                language="python",
                instruction=f"Fix the bug in `{_fn_name(b.post)}`.",
                pre_code=b.pre,
                post_code=b.post,
                split=_split_of(b.post, heldout=heldout),
            )
        )
    return out


def _tested_records(*, seed: int, modules: Sequence[str]) -> list[NormalizedRecord]:
    return [
        NormalizedRecord.build(
            id=f"bugfix_tested/{t.module}.{t.name}/{t.pair.mutation.kind}",
            source="synthetic_bugfix_tested",
            language="python",
            instruction=f"Fix the bug in `{t.name}`; its doctest examples must pass.",
            pre_code=t.pair.pre,
            post_code=t.pair.post,
            tests=t.tests,
            split=_split_of(t.pair.post, heldout=module_reserved(t.module)),
        )
        for t in (tested_bugs(seed=seed, modules=modules) if modules else [])
    ]


def drop_leaking(
    records: Sequence[NormalizedRecord], *, threshold: float = DEFAULT_THRESHOLD
) -> Built:
    """Drop the later-split row of every leaking pair (train > dev > test in priority)."""
    report = check_leakage(records, threshold=threshold)
    split_of = {r.id: r.split for r in records}
    drop: set[str] = set()
    for pair in report.pairs:
        a, b = split_of[pair.a_id], split_of[pair.b_id]
        drop.add(pair.b_id if _SPLIT_ORDER[b] >= _SPLIT_ORDER[a] else pair.a_id)
    kept = [r for r in records if r.id not in drop]
    return Built(kept, sorted(drop))


def drop_pretrain_overlap(
    records: Sequence[NormalizedRecord], corpus: Sequence[str]
) -> tuple[list[NormalizedRecord], list[str]]:
    """Drop the dev/test rows whose code shares a 13-gram with the pretraining ``corpus``."""
    drop = set(overlapping_ids(pretrain_overlap(records, corpus)))
    return [r for r in records if r.id not in drop], sorted(drop)


def build_embedded(
    *,
    root: Path | None = None,
    seed: int = 0,
    sources: Sources | None = None,
    doctest_modules: Sequence[str] = DOCTEST_MODULES,
) -> tuple[DatasetMetadata, Built]:
    """Build, filter and write the embedded set under ``root`` (default: settings data dir)."""
    src = sources or embedded_sources()
    records = build_records(src, seed=seed, doctest_modules=doctest_modules)
    unique = {r.id: r for r in records}  # one function, one codemod: one id
    clean, overlapping = drop_pretrain_overlap(list(unique.values()), src.pretrain_corpus)
    built = drop_leaking(clean)
    built.dropped_pretrain_overlap = overlapping
    meta = write_processed(
        built.records,
        root=root or default_root(),
        name="code_edit_embedded",
        generator="trainers.code_edit.generate",
        seed=seed,
        sources={
            "synthetic_codemod": "ast-grep rules applied to decontaminated stdlib functions "
            "and methods (train: pretraining part; dev/test: reserved part; the same "
            "population of short functions and methods on both sides)",
            "synthetic_bugfix": "single-token mutations of decontaminated documented stdlib "
            "functions (train: pretraining part; dev/test: reserved part)",
            "synthetic_bugfix_tested": "mutations verified to break the function's doctests "
            "(dev/test only from reserved modules)",
        },
        near_duplicate_threshold=DEFAULT_THRESHOLD,
    )
    return meta, built


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainers.code_edit.generate [--root DIR] [--seed N]``: build and print stats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    meta, built = build_embedded(root=args.root, seed=args.seed)
    stats = dataset_stats(built.records).as_dict()
    dropped = {
        "dropped_leaking": len(built.dropped_leaking),
        "dropped_pretrain_overlap": len(built.dropped_pretrain_overlap),
    }
    print(json.dumps({**stats, **dropped}, indent=2))
    return 0 if meta.counts else 1


if __name__ == "__main__":
    raise SystemExit(main())
