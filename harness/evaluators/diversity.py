"""Diversity between models: per-item disagreement and linear CKA of representations.

Why: the forge phase's Cognate step must show that its three models differ (the
brief's failure mode "models don't diversify"), and a control of three copies of one
model must be able to FAIL.  Two complementary measures:

* **disagreement** — on the same held-out items, does model *i* give a different
  (normalised) answer from model *j*?  Returned per item as booleans so the decision
  layer can put a confidence bound on the rate (a binomial proportion), not only a
  point estimate; copies of one model disagree on 0 items.
* **linear CKA** (Kornblith et al. 2019, "Similarity of Neural Network Representations
  Revisited") between two ``n × d`` activation matrices on the same inputs:
  ``‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` on column-centred ``Xᶜ``, ``Yᶜ``.  It is 1
  for identical representations and invariant to rotations, isotropic scaling and
  translation, so ``1 − CKA`` is a representation distance.  It is descriptive (no
  sampling distribution is claimed here).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

from harness.errors import DataValidationError

__all__ = ["disagreement_items", "linear_cka", "mean_pairwise_disagreement"]


def disagreement_items(a: Sequence[str | None], b: Sequence[str | None]) -> list[bool]:
    """Per item: True iff the two models' answers differ (``None`` = no answer, a value)."""
    if len(a) != len(b):
        raise DataValidationError(
            f"disagreement: {len(a)} vs {len(b)} answers; both models must answer the same items."
        )
    return [x != y for x, y in zip(a, b, strict=True)]


def mean_pairwise_disagreement(answers: Sequence[Sequence[str | None]]) -> float:
    """Mean over model pairs of the share of items on which the pair disagrees."""
    if len(answers) < 2:
        raise DataValidationError(f"disagreement: needs ≥ 2 models; got {len(answers)}.")
    rates = [
        float(np.mean(disagreement_items(answers[i], answers[j])))
        for i, j in combinations(range(len(answers)), 2)
    ]
    return float(np.mean(rates))


def linear_cka(x: ArrayLike, y: ArrayLike) -> float:
    """Linear CKA between ``n × d₁`` and ``n × d₂`` representations of the same ``n`` inputs."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 2 or ya.ndim != 2 or xa.shape[0] != ya.shape[0] or xa.shape[0] < 2:
        raise DataValidationError(
            f"linear_cka: need two 2-D arrays with the same number (≥ 2) of rows; "
            f"got shapes {xa.shape} and {ya.shape}."
        )
    xc = xa - xa.mean(axis=0)
    yc = ya - ya.mean(axis=0)
    cross = float(np.linalg.norm(yc.T @ xc, "fro") ** 2)
    denom = float(np.linalg.norm(xc.T @ xc, "fro") * np.linalg.norm(yc.T @ yc, "fro"))
    if denom == 0.0:
        raise DataValidationError("linear_cka: a representation is constant across inputs.")
    return cross / denom
