"""Synthetic arithmetic word problems: answers re-derived from the text, splits, loader, checker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.data.arithmetic import (
    DIFFICULTIES,
    SPLIT_SEED_BASE,
    ArithmeticItem,
    exclude_questions,
    extract_answer,
    generate_item,
    is_correct,
    load_jsonl,
    make_splits,
    normalize_answer,
    question_digest,
    read_question_digests,
    split_items,
    write_question_digests,
)
from harness.errors import DataValidationError


def _solve(question: str) -> int:
    """An independent reader of the generated English: recompute the answer from the text."""
    sentences = [s for s in re.split(r"(?<=[.?])\s+", question) if s]
    value = int(re.search(r"has (\d+)", sentences[0]).group(1))  # type: ignore[union-attr]
    mult = {"doubles": 2, "triples": 3, "quadruples": 4}
    for s in sentences[1:-1]:
        n = re.search(r"(\d+)", s)
        if any(w in s for w in ("buys", "finds", "is given")):
            value += int(n.group(1))  # type: ignore[union-attr]
        elif any(w in s for w in ("gives away", "loses", "sells")):
            value -= int(n.group(1))  # type: ignore[union-attr]
        elif "equal groups" in s:
            d = int(n.group(1))  # type: ignore[union-attr]
            assert value % d == 0
            value //= d
        else:
            value *= next(k for w, k in mult.items() if w in s)
        assert value >= 0
    return value


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_answers_match_the_question_text_and_steps_match_the_level(difficulty: int) -> None:
    for seed in range(300):
        item = generate_item(seed, difficulty)
        assert int(item.answer) == _solve(item.question), item.question
        assert item.question.count("Then ") == difficulty
    assert generate_item(5, difficulty) == generate_item(5, difficulty)  # seeded


def test_levels_are_harder_by_steps_and_magnitude() -> None:
    mean = {d: sum(int(generate_item(s, d).answer) for s in range(200)) / 200 for d in DIFFICULTIES}
    assert mean[1] < mean[2] < mean[3]
    with pytest.raises(DataValidationError, match="difficulty"):
        generate_item(0, 7)


def test_splits_are_disjoint_by_seed_and_by_text() -> None:
    sp = make_splits({"train": 2000, "selection": 300, "dev": 300, "held_out": 300})
    names = ("train", "selection", "dev", "held_out")
    assert [len(sp[k]) for k in names] == [2000, 300, 300, 300]
    seeds = {k: {i.seed for i in v} for k, v in sp.items()}
    texts = {k: {i.question for i in v} for k, v in sp.items()}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seeds[a] & seeds[b], (a, b)
            assert not texts[a] & texts[b], (a, b)
    assert {i.difficulty for i in sp["held_out"]} == set(DIFFICULTIES)
    assert make_splits({"held_out": 10})["held_out"] == sp["held_out"][:10]  # stable


def test_dev_is_the_old_held_out_and_held_out_is_fresh() -> None:
    """The forge design was compared on seeds from 2·10⁹ (then ``held_out``): those are dev
    now; the judged split starts at a base no earlier version used."""
    assert SPLIT_SEED_BASE["dev"] == 2_000_000_000
    assert SPLIT_SEED_BASE["held_out"] == 3_000_000_000
    sp = make_splits({"dev": 5, "held_out": 5})
    assert sp["dev"][0].seed == 2_000_000_000
    assert sp["held_out"][0].seed == 3_000_000_000


def test_question_digests_drop_trained_questions(tmp_path: Path) -> None:
    q = "Ava has 3 apples. How many apples does Ava have now?"
    assert question_digest(q) == question_digest(
        "  ava HAS 3 apples.\nHow many apples does Ava have now? "
    )
    assert question_digest(q) != question_digest(q.replace("3", "4"))
    sp = make_splits({"train": 50, "held_out": 40})
    trained = [it.question for it in sp["train"]] + [it.question for it in sp["held_out"][:7]]
    sha, n = write_question_digests(tmp_path / "q.gz", trained)
    assert n == 57
    assert write_question_digests(tmp_path / "again.gz", trained[::-1])[0] == sha  # deterministic
    seen = read_question_digests(tmp_path / "q.gz", sha256=sha)
    kept, dropped = exclude_questions(sp["held_out"], seen)
    assert dropped == 7 and kept == sp["held_out"][7:]
    with pytest.raises(DataValidationError, match="does not match"):
        read_question_digests(tmp_path / "q.gz", sha256="0" * 64)
    with pytest.raises(DataValidationError, match="no question-digest file"):
        read_question_digests(tmp_path / "absent.gz", sha256=sha)


def test_answer_extraction_and_exact_checking() -> None:
    assert normalize_answer(" $1,234.0 ") == "1234"
    assert normalize_answer("12.5") is None
    assert extract_answer("so 3 + 4 = 7 apples") == "7"
    assert extract_answer("steps 1 2 3 #### 42 and then 99") == "42"
    assert extract_answer("no number") is None
    assert is_correct("The answer is 1,000.", "1000")
    assert not is_correct("The answer is 100", "1000")
    assert not is_correct("", "0")


def test_load_jsonl_accepts_gsm8k_shape_and_names_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "gsm.jsonl"
    rows = [
        {"question": "Q1?", "answer": "She has 3+4=7.\n#### 7"},
        {"question": "Q2?", "answer": 12},
        {"question": "Q3?", "answer": "1,500"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert [i.answer for i in load_jsonl(p)] == ["7", "12", "1500"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q", "answer": "7"}\n{"question": "", "answer": "1"}\n')
    with pytest.raises(DataValidationError, match=r"bad.jsonl:2: field 'question'"):
        load_jsonl(bad)
    bad.write_text('{"question": "Q", "answer": "seven"}\n')
    with pytest.raises(DataValidationError, match=r":1: field 'answer'='seven'"):
        load_jsonl(bad)
    bad.write_text("{nope\n")
    with pytest.raises(DataValidationError, match="not JSON"):
        load_jsonl(bad)
    with pytest.raises(DataValidationError, match="no such file"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_split_items_is_a_seeded_partition() -> None:
    items = [ArithmeticItem(f"q{i}", str(i)) for i in range(100)]
    sp = split_items(items, fractions=(0.8, 0.1, 0.1), seed=3)
    assert [len(sp[k]) for k in ("train", "selection", "held_out")] == [80, 10, 10]
    assert sorted(i.question for v in sp.values() for i in v) == sorted(i.question for i in items)
    assert sp == split_items(items, fractions=(0.8, 0.1, 0.1), seed=3)
    with pytest.raises(DataValidationError, match="sum to 1"):
        split_items(items, fractions=(0.5, 0.1, 0.1), seed=0)
