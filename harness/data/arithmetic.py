"""A synthetic multi-step arithmetic word-problem task with exact answer checking.

Why synthetic: the forge phase (and later reasoning phases) are judged on
GSM8K-style problems, which are not available offline.  This generator gives a
task with headroom for tiny models: difficulty ``d`` (1 … 4) is the number of
arithmetic steps, and larger levels also use larger numbers, multiplication and
exact division.  Every item is generated from its own integer seed, so a split is
a seed range: ``train``, ``selection`` (what a search optimises), ``dev`` (where
design choices and probes are measured) and ``held_out`` (what gates judge, touched
once per run) use disjoint seed ranges, and :func:`make_splits` additionally drops
any question text already present in an earlier split, so no held-out question
appears verbatim in training.  ``dev`` has the seed base that ``held_out`` had before
(the items the forge design was compared on); ``held_out`` moved to a fresh base,
never used for any choice.

Splits made by *separate* calls (another phase's task built on a model trained here)
are not deduplicated against each other; :func:`question_digest` /
:func:`exclude_questions` drop items whose question a model was trained on, given the
digests that model's producer recorded (:func:`write_question_digests`).

A user dataset in the same JSONL shape (one object per line with ``question`` and
``answer``) loads with :func:`load_jsonl`; GSM8K's answer field (a rationale ending
in ``#### 42``) is reduced to its final number.  :func:`split_items` splits such a
list into the same three splits by a seeded permutation.

Answers are integers compared exactly after normalisation (:func:`normalize_answer`);
:func:`extract_answer` reads a model's free-text output (``#### n`` if present, else
the last integer), treating the output as untrusted text.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.atomic import atomic_write_bytes
from harness.errors import DataValidationError

__all__ = [
    "DIFFICULTIES",
    "SPLIT_SEED_BASE",
    "ArithmeticItem",
    "SplitName",
    "exclude_questions",
    "extract_answer",
    "generate_item",
    "is_correct",
    "load_jsonl",
    "make_splits",
    "normalize_answer",
    "question_digest",
    "read_jsonl_objects",
    "read_question_digests",
    "split_items",
    "write_question_digests",
]

SplitName = Literal["train", "selection", "dev", "held_out"]

#: Difficulty levels: number of arithmetic steps (and growing number ranges).
DIFFICULTIES = (1, 2, 3, 4)

#: Each split draws item seeds from its own range ``[base, base + 10⁹)``: disjoint by construction.
SPLIT_SEED_BASE: dict[SplitName, int] = {
    "train": 0,
    "selection": 1_000_000_000,
    # the forge design (encoding, level mix) was compared on these items: dev, never judged
    "dev": 2_000_000_000,
    # drawn fresh after those choices; what gates judge
    "held_out": 3_000_000_000,
}
_SPLIT_ORDER: tuple[SplitName, ...] = ("train", "selection", "dev", "held_out")
_SPAN = 1_000_000_000

_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas")
_THINGS = ("apples", "marbles", "stickers", "coins", "books", "shells", "cards", "pencils")
_MAX_NUMBER = {1: 20, 2: 50, 3: 100, 4: 200}


@dataclass(frozen=True)
class ArithmeticItem:
    """One problem: question text, exact integer answer (as a string), its level and seed."""

    question: str
    answer: str
    difficulty: int = 0  # 0 = unknown (user data)
    seed: int = -1  # -1 = not generated


def _step(rng: random.Random, value: int, level: int, name: str, thing: str) -> tuple[str, int]:
    """One sentence that changes ``value``; only ops that keep it a non-negative integer."""
    hi = _MAX_NUMBER[level]
    ops = ["add", "sub"] + (["mul"] if level >= 3 else []) + (["div"] if level >= 4 else [])
    op = rng.choice(ops)
    if op == "sub" and value < 2:
        op = "add"
    if op == "div":
        divisors = [d for d in (2, 3, 4, 5) if value % d == 0 and value > 0]
        if not divisors:
            op = "add"
        else:
            d = rng.choice(divisors)
            return f"Then {name} splits them into {d} equal groups and keeps one group.", value // d
    if op == "add":
        n = rng.randint(1, hi)
        verb = rng.choice(("buys", "finds", "is given"))
        return f"Then {name} {verb} {n} more {thing}.", value + n
    if op == "sub":
        n = rng.randint(1, value - 1)
        verb = rng.choice(("gives away", "loses", "sells"))
        return f"Then {name} {verb} {n} {thing}.", value - n
    k = rng.randint(2, 4)
    word = {2: "doubles", 3: "triples", 4: "quadruples"}[k]
    return f"Then {name} {word} the number of {thing}.", value * k


def generate_item(seed: int, difficulty: int) -> ArithmeticItem:
    """The problem for ``seed`` at ``difficulty`` (deterministic; ``difficulty`` steps)."""
    if difficulty not in DIFFICULTIES:
        raise DataValidationError(
            f"difficulty={difficulty!r} is not a level; choose one of {DIFFICULTIES}."
        )
    rng = random.Random(f"arith:{seed}:{difficulty}")
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    value = rng.randint(2, _MAX_NUMBER[difficulty])
    parts = [f"{name} has {value} {thing}."]
    for _ in range(difficulty):
        sentence, value = _step(rng, value, difficulty, name, thing)
        parts.append(sentence)
    parts.append(f"How many {thing} does {name} have now?")
    return ArithmeticItem(" ".join(parts), str(value), difficulty, seed)


def make_splits(
    sizes: dict[SplitName, int], *, difficulties: tuple[int, ...] = DIFFICULTIES
) -> dict[SplitName, list[ArithmeticItem]]:
    """Generate the splits from disjoint seed ranges, levels cycling through ``difficulties``.

    Questions already produced by an earlier split (order: train, selection, dev,
    held_out) are skipped, so the splits are disjoint by seed *and* by text.
    """
    seen: set[str] = set()
    out: dict[SplitName, list[ArithmeticItem]] = {}
    for split in _SPLIT_ORDER:
        n = sizes.get(split, 0)
        items: list[ArithmeticItem] = []
        seed = SPLIT_SEED_BASE[split]
        while len(items) < n:
            if seed >= SPLIT_SEED_BASE[split] + _SPAN:
                raise DataValidationError(f"split {split!r}: seed range exhausted at n={n}.")
            item = generate_item(seed, difficulties[seed % len(difficulties)])
            seed += 1
            if item.question not in seen:
                seen.add(item.question)
                items.append(item)
        out[split] = items
    return out


def question_digest(question: str) -> str:
    """sha256 hex of the question with whitespace collapsed and case folded.

    Why normalise: the same problem re-typed with other spacing or capitals is the same
    item for a model; digests (not texts) travel with a checkpoint.
    """
    norm = " ".join(question.split()).casefold()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def exclude_questions(
    items: list[ArithmeticItem], digests: frozenset[str] | set[str]
) -> tuple[list[ArithmeticItem], int]:
    """``items`` without those whose :func:`question_digest` is in ``digests``; and how many."""
    kept = [it for it in items if question_digest(it.question) not in digests]
    return kept, len(items) - len(kept)


def write_question_digests(path: Path, questions: list[str]) -> tuple[str, int]:
    """Write sorted unique digests of ``questions`` (gzip, one per line); (file sha256, count).

    Deterministic bytes (gzip mtime 0), so the file's digest names the set.
    """
    lines = sorted({question_digest(q) for q in questions})
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write("".join(d + "\n" for d in lines).encode("ascii"))
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), len(lines)


def read_question_digests(path: Path, *, sha256: str) -> frozenset[str]:
    """The digest set written by :func:`write_question_digests`; checks the file's sha256."""
    if not path.is_file():
        raise DataValidationError(f"{path}: no question-digest file; the producer writes it.")
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DataValidationError(
            f"{path}: sha256 {got} does not match the manifest's {sha256}; the file was "
            "changed or belongs to another run — re-run the producing phase."
        )
    try:
        lines = gzip.decompress(data).decode("ascii").split()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataValidationError(f"{path}: not a gzip list of sha256 digests ({exc}).") from exc
    if any(re.fullmatch(r"[0-9a-f]{64}", d) is None for d in lines):
        raise DataValidationError(f"{path}: a line is not a sha256 hex digest.")
    return frozenset(lines)


_INT = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_answer(text: str) -> str | None:
    """``" $1,234.0 "`` → ``"1234"``; ``None`` if ``text`` is not one integer."""
    t = text.strip().lstrip("$").rstrip(".").replace(",", "").strip()
    if re.fullmatch(r"-?\d+(\.0+)?", t) is None:
        return None
    return str(int(float(t))) if "." in t else str(int(t))


def extract_answer(output: str) -> str | None:
    """The answer a model's free text commits to: after the last ``####``, else the last number."""
    if "####" in output:
        tail = output.rsplit("####", 1)[1]
        m = _INT.search(tail)
        return normalize_answer(m.group(0)) if m else None
    nums = _INT.findall(output)
    return normalize_answer(nums[-1]) if nums else None


def is_correct(output: str, answer: str) -> bool:
    """Exact match of the extracted integer against the reference answer."""
    got, want = extract_answer(output), normalize_answer(answer)
    return got is not None and got == want


def _row_item(path: Path, lineno: int, row: object) -> ArithmeticItem:
    where = f"{path}:{lineno}"
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object with 'question' and 'answer'.")
    q, a = row.get("question"), row.get("answer")
    if not isinstance(q, str) or not q.strip():
        raise DataValidationError(f"{where}: field 'question' is missing or empty; got {q!r}.")
    if isinstance(a, bool) or not isinstance(a, (str, int)):
        raise DataValidationError(
            f"{where}: field 'answer' must be a string or integer; got {a!r}."
        )
    norm = extract_answer(a) if isinstance(a, str) and "####" in a else normalize_answer(str(a))
    if norm is None:
        raise DataValidationError(
            f"{where}: field 'answer'={a!r} is not an integer (or a rationale ending '#### n'); "
            "this task checks integer answers exactly."
        )
    return ArithmeticItem(q.strip(), norm)


def read_jsonl_objects(path: Path, *, missing: str, empty: str) -> list[tuple[int, object]]:
    """``(line number, parsed object)`` per non-blank line; the one JSONL reader of the task
    loaders, so a missing file, bad JSON and an empty file read the same everywhere.

    ``missing`` and ``empty`` finish the error messages (what the caller's file must hold).
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file; {missing}")
    rows: list[tuple[int, object]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"{path}:{lineno}: not JSON ({exc.msg}).") from exc
    if not rows:
        raise DataValidationError(f"{path}: no rows; {empty}")
    return rows


def load_jsonl(path: str | Path) -> list[ArithmeticItem]:
    """Load ``question``/``answer`` JSONL (e.g. GSM8K); errors name file, line, field and value."""
    p = Path(path)
    rows = read_jsonl_objects(
        p,
        missing="pass a JSONL file of question/answer rows.",
        empty="the file needs one JSON object per line.",
    )
    return [_row_item(p, lineno, row) for lineno, row in rows]


def split_items(
    items: list[ArithmeticItem], *, fractions: tuple[float, float, float], seed: int
) -> dict[SplitName, list[ArithmeticItem]]:
    """Split user items by a seeded permutation into train/selection/held_out (disjoint rows)."""
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise DataValidationError(f"fractions={fractions} must be ≥ 0 and sum to 1.")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(items))
    n_sel = round(fractions[1] * len(items))
    cuts = (n_train, n_train + n_sel)
    return {
        "train": [items[i] for i in order[: cuts[0]]],
        "selection": [items[i] for i in order[cuts[0] : cuts[1]]],
        "held_out": [items[i] for i in order[cuts[1] :]],
    }
