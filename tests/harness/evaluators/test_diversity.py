"""Disagreement and linear CKA checked against their definitions and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import DataValidationError
from harness.evaluators.diversity import (
    disagreement_items,
    linear_cka,
    mean_pairwise_disagreement,
)


def test_disagreement_by_hand_and_the_three_copies_control() -> None:
    a, b, c = ["1", "2", None, "4"], ["1", "3", None, "5"], ["9", "2", "3", "4"]
    assert disagreement_items(a, b) == [False, True, False, True]
    # pairs: (a,b) 2/4, (a,c) 2/4, (b,c) 4/4
    assert mean_pairwise_disagreement([a, b, c]) == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert mean_pairwise_disagreement([a, a, a]) == 0.0
    with pytest.raises(DataValidationError, match="same items"):
        disagreement_items(a, b[:2])
    with pytest.raises(DataValidationError, match="≥ 2 models"):
        mean_pairwise_disagreement([a])


def test_linear_cka_invariances() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0)  # rotation, scale, shift
    y = rng.normal(size=(200, 5))
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))
    assert linear_cka(x, y) < 0.15  # independent representations: near 0 for n ≫ d
    mixed = np.hstack([x[:, :4], rng.normal(size=(200, 4))])
    assert linear_cka(x, y) < linear_cka(x, mixed) < 1.0


def test_linear_cka_matches_the_hsic_formula() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 6)) + 0.5 * rng.normal(size=(30, 1))
    n = 30
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h

    def hsic(k: np.ndarray, m: np.ndarray) -> float:
        return float(np.trace(k @ m))

    ref = hsic(kx, ky) / np.sqrt(hsic(kx, kx) * hsic(ky, ky))
    assert linear_cka(x, y) == pytest.approx(ref)


def test_linear_cka_rejects_bad_shapes_and_constant_input() -> None:
    with pytest.raises(DataValidationError, match="same number"):
        linear_cka(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(DataValidationError, match="constant"):
        linear_cka(np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)))
