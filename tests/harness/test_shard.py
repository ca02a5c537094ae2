"""Shard assignment: a hash of the item's unit, stable everywhere, balanced, order kept."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from harness.outcomes import Outcome
from harness.shard import (
    PositionMode,
    ShardError,
    ShardSpec,
    shard_of,
    split_outcomes,
    unit_of,
    units_digest,
)


def test_parse_accepts_i_of_n_and_names_bad_values() -> None:
    assert ShardSpec.parse("2/3") == ShardSpec(2, 3)
    assert str(ShardSpec.parse(" 1 / 1 ")) == "1/1"
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2"):
        with pytest.raises(ShardError, match="--shard"):
            ShardSpec.parse(bad)


def test_assignment_is_sha256_of_the_unit_and_pinned() -> None:
    # the rule, spelled out independently: first 8 bytes of sha256, big-endian, mod N, 1-based
    for unit in ("HumanEval/0", "harm-0001", "ünïcode/τ", ""):
        expected = 1 + int(hashlib.sha256(unit.encode()).hexdigest()[:16], 16) % 7
        assert shard_of(unit, 7) == expected
    # pinned values: a change of the rule would silently reshuffle stored shards
    assert [shard_of(f"HumanEval/{i}", 3) for i in range(8)] == [3, 3, 1, 3, 1, 2, 3, 2]


def test_every_item_in_exactly_one_shard_and_balanced() -> None:
    ids = [f"item-{i:05d}" for i in range(9000)]
    owners = [[s for s in range(1, 4) if ShardSpec(s, 3).owns(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    counts = Counter(o[0] for o in owners)
    assert all(abs(c - 3000) < 4 * (9000 * (1 / 3) * (2 / 3)) ** 0.5 for c in counts.values())
    assert all(ShardSpec(1, 1).owns(i) for i in ids[:50])


def test_take_keeps_the_original_order() -> None:
    items = [f"t{i}" for i in range(200)]
    parts = [ShardSpec(s, 4).take(items, key=str) for s in range(1, 5)]
    for part in parts:
        assert part == sorted(part, key=items.index)
    assert sorted(x for p in parts for x in p) == sorted(items)


def test_clustered_samples_stay_in_one_shard() -> None:
    outcomes = [
        Outcome(f"task{t}#s{s}", 1.0, cluster=f"task{t}") for t in range(30) for s in range(4)
    ]
    assert unit_of(outcomes[0]) == "task0"
    for t in range(30):
        owners = {shard_of(unit_of(o), 5) for o in outcomes if o.cluster == f"task{t}"}
        assert len(owners) == 1


def test_split_exact_positions_and_universe() -> None:
    outcomes = [Outcome(f"i{k}", float(k % 2)) for k in range(50)]
    parts = [split_outcomes(outcomes, ShardSpec(s, 3)) for s in (1, 2, 3)]
    assert {p.mode for p in parts} == {PositionMode.EXACT}
    assert {p.universe for p in parts} == {units_digest([o.item_id for o in outcomes])}
    positions = sorted(row["pos"][0] for p in parts for row in p.rows)
    assert positions == list(range(50))


def test_split_with_a_suite_universe_refuses_foreign_items() -> None:
    universe = [f"t{i}" for i in range(20)]
    shard = ShardSpec(2, 3)
    mine = shard.take(universe, key=str)
    outcomes = [Outcome(f"{t}#0", 1.0, cluster=t) for t in mine]
    sample = split_outcomes(outcomes, shard, universe=universe)
    assert sample.mode is PositionMode.UNIT and sample.total == 20
    assert [row["pos"][0] for row in sample.rows] == [universe.index(t) for t in mine]
    foreign = next(t for t in universe if t not in mine)
    with pytest.raises(ShardError, match=f"unit '{foreign}'"):
        split_outcomes([Outcome(f"{foreign}#0", 1.0, cluster=foreign)], shard, universe=universe)
    with pytest.raises(ShardError, match="occurs twice"):
        split_outcomes([], shard, universe=["a", "a"])
