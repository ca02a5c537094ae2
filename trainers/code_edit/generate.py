"""The embedded code-edit data set, built offline from the standard library.

Sources: the HumanEval-decontaminated standard-library functions of
:func:`trainers.code_corpus.code_corpus` (HumanEval is the codegen phase's
benchmark; a function sharing a 13-gram with it never enters any split), turned
into (a) ``synthetic_codemod`` records by the ast-grep rules of
:mod:`trainers.code_edit.codemods` (ground-truth ``action`` = the rule) and
(b) ``synthetic_bugfix`` records by :mod:`trainers.code_edit.mutations`.

Splits are drawn from the hash of the *original function*, so every edit of one
function lands in one split.  Different stdlib functions can still be near
copies of each other (wrappers, aliases), so after splitting, dev/test rows
that leak into an earlier split (exact hash or near duplicate,
:func:`harness.data.code_edit.leakage.check_leakage`) are dropped and counted —
the train split is never thinned to make room.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.code_edit.leakage import DEFAULT_THRESHOLD, check_leakage
from harness.data.code_edit.loaders import hash_split
from harness.data.code_edit.schema import DatasetMetadata, NormalizedRecord, Split
from harness.data.code_edit.store import dataset_stats, default_root, write_processed
from trainers.code_edit.codemods import CODEMODS, apply_codemods, rule_document
from trainers.code_edit.mutations import mutate_functions
from trainers.code_edit.tested_bugs import DOCTEST_MODULES, tested_bugs

__all__ = ["Built", "build_embedded", "build_records", "drop_leaking", "main"]

_SPLIT_ORDER = {Split.TRAIN: 0, Split.DEV: 1, Split.TEST: 2}


@dataclass
class Built:
    """The kept records and what was dropped for leakage (ids)."""

    records: list[NormalizedRecord]
    dropped_leaking: list[str] = field(default_factory=list)


def _fn_name(text: str) -> str:
    head = text.split("(", 1)[0]
    return head.split()[-1] if head.split() else "function"


def _split_of(original: str) -> Split:
    return hash_split(hashlib.sha256(original.encode("utf-8")).hexdigest())


def build_records(
    functions: Sequence[str], *, seed: int = 0, doctest_modules: Sequence[str] = DOCTEST_MODULES
) -> list[NormalizedRecord]:
    """Codemod, bug-fix and tested bug-fix records (no leakage filtering yet)."""
    out = _tested_records(seed=seed, modules=doctest_modules)
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
                split=_split_of(p.pre),
            )
        )
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
                split=_split_of(b.post),
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
            split=_split_of(t.pair.post),
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


def build_embedded(
    *,
    root: Path | None = None,
    seed: int = 0,
    functions: Sequence[str] | None = None,
    doctest_modules: Sequence[str] = DOCTEST_MODULES,
) -> tuple[DatasetMetadata, Built]:
    """Build, de-leak and write the embedded set under ``root`` (default: settings data dir)."""
    if functions is None:
        from trainers.code_corpus import code_corpus

        functions = code_corpus().texts
    records = build_records(functions, seed=seed, doctest_modules=doctest_modules)
    unique = {r.id: r for r in records}  # one function, one codemod: one id
    built = drop_leaking(list(unique.values()))
    meta = write_processed(
        built.records,
        root=root or default_root(),
        name="code_edit_embedded",
        generator="trainers.code_edit.generate",
        seed=seed,
        sources={
            "synthetic_codemod": "ast-grep rules applied to decontaminated stdlib functions",
            "synthetic_bugfix": "single-token mutations of decontaminated stdlib functions",
            "synthetic_bugfix_tested": "mutations verified to break the function's doctests",
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
    print(json.dumps({**stats, "dropped_leaking": len(built.dropped_leaking)}, indent=2))
    return 0 if meta.counts else 1


if __name__ == "__main__":
    raise SystemExit(main())
