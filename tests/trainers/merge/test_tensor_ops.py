"""Linear, SLERP, TIES and DARE checked against their definitions on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import TrainerError
from trainers.merge.tensor_ops import DOT_THRESHOLD, dare, linear, slerp, slerp_tensor, ties


def _sd(*values: float) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor(values, dtype=torch.float32)}


def test_linear_is_the_weighted_mean() -> None:
    a = {"w": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([[3.0, 6.0]]), "b": torch.tensor([4.0])}
    out = linear([a, b], weights=[3.0, 1.0])
    torch.testing.assert_close(out["w"], torch.tensor([[1.5, 3.0]]))
    torch.testing.assert_close(out["b"], torch.tensor([1.0]))


def test_linear_keeps_dtype_and_rejects_mismatched_models() -> None:
    a = {"w": torch.ones(2, dtype=torch.bfloat16)}
    assert linear([a, a])["w"].dtype == torch.bfloat16
    with pytest.raises(TrainerError, match="different keys"):
        linear([a, {"v": torch.ones(2)}])
    with pytest.raises(TrainerError, match="shape"):
        linear([a, {"w": torch.ones(3)}])
    with pytest.raises(TrainerError, match="weights"):
        linear([a, a], weights=[1.0])


def _slerp_ref(a: list[float], b: list[float], t: float) -> list[float]:
    """Textbook SLERP of two vectors with the linear fallback, in pure Python."""
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)))
    if abs(dot) > DOT_THRESHOLD:
        return [(1 - t) * x + t * y for x, y in zip(a, b, strict=True)]
    th = math.acos(dot)
    ca, cb = math.sin((1 - t) * th) / math.sin(th), math.sin(t * th) / math.sin(th)
    return [ca * x + cb * y for x, y in zip(a, b, strict=True)]


def test_slerp_endpoints_and_orthogonal_midpoint() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(slerp_tensor(a, b, 0.0), a)
    torch.testing.assert_close(slerp_tensor(a, b, 1.0), b)
    mid = slerp_tensor(a, b, 0.5)
    torch.testing.assert_close(mid, torch.tensor([[1.0, 1.0]]) / math.sqrt(2))
    assert float(mid.norm()) == pytest.approx(1.0)  # stays on the sphere (linear would give 0.707)


def test_slerp_is_per_row_with_linear_fallback_for_parallel_rows() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 5, generator=g)
    b = torch.randn(4, 5, generator=g)
    b[1] = 2.0 * a[1]  # parallel row → linear fallback
    b[2] = -a[2] * 0.5  # anti-parallel → |dot| = 1 → linear fallback
    out = slerp_tensor(a, b, 0.3)
    for r in range(4):
        ref = torch.tensor(_slerp_ref(a[r].tolist(), b[r].tolist(), 0.3))
        torch.testing.assert_close(out[r], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], 0.7 * a[1] + 0.3 * b[1])


def test_slerp_tensor_granularity_treats_the_whole_tensor_as_one_vector() -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    whole = slerp_tensor(a, b, 0.4, granularity="tensor")
    ref = torch.tensor(_slerp_ref(a.flatten().tolist(), b.flatten().tolist(), 0.4))
    torch.testing.assert_close(whole.flatten(), ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(whole, slerp_tensor(a, b, 0.4))  # per-row differs
    with pytest.raises(TrainerError, match="granularity"):
        slerp_tensor(a, b, 0.4, granularity="col")  # type: ignore[arg-type]


def test_slerp_zero_row_and_bias_vector() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    out = slerp_tensor(a, b, 0.5)
    torch.testing.assert_close(out[0], torch.tensor([0.5, 0.5]))  # zero norm → linear
    v = slerp({"b": torch.tensor([1.0, 0.0])}, {"b": torch.tensor([0.0, 1.0])}, t=0.5)["b"]
    torch.testing.assert_close(v, torch.tensor([1.0, 1.0]) / math.sqrt(2))  # 1-D = one row
    with pytest.raises(TrainerError, match="outside"):
        slerp({"b": a}, {"b": b}, t=1.5)


def test_ties_trim_elect_disjoint_mean_by_hand() -> None:
    base = _sd(0.0, 0.0, 0.0, 0.0)
    m1 = _sd(3.0, -1.0, 0.5, 2.0)  # top-2: [3, ., ., 2]
    m2 = _sd(-2.0, -4.0, 1.0, 1.0)  # top-2: [-2, -4, ., .]
    # elected sign of the sum [1, -4, 0, 2] → [+, -, 0, +]; disjoint means: 3, -4, 0, 2
    out = ties(base, [m1, m2], density=0.5)
    torch.testing.assert_close(out["w"], torch.tensor([3.0, -4.0, 0.0, 2.0]))


def test_ties_with_full_density_and_agreeing_signs_is_task_arithmetic_mean() -> None:
    base = _sd(1.0, 1.0, 1.0)
    m1, m2 = _sd(2.0, 3.0, 1.5), _sd(4.0, 2.0, 1.5)
    out = ties(base, [m1, m2], density=1.0, lam=1.0)
    torch.testing.assert_close(out["w"], linear([m1, m2])["w"])
    out2 = ties(base, [m1, m2], density=1.0, lam=0.5)
    torch.testing.assert_close(out2["w"], torch.tensor([2.0, 1.75, 1.25]))
    with pytest.raises(TrainerError, match="density"):
        ties(base, [m1], density=0.0)


def test_ties_weights_decide_the_sign_election() -> None:
    base = _sd(0.0)
    out = ties(base, [_sd(1.0), _sd(-1.0)], density=1.0, weights=[1.0, 3.0])
    torch.testing.assert_close(out["w"], torch.tensor([-1.0]))  # −3 outvotes +1
    tie = ties(base, [_sd(1.0), _sd(-1.0)], density=1.0)
    torch.testing.assert_close(tie["w"], torch.tensor([1.0]))  # zero sum elects + (mergekit)


def test_dare_keeps_with_probability_p_and_rescales_by_inverse_p() -> None:
    base = {"w": torch.zeros(20_000)}
    delta = {"w": torch.linspace(0.1, 1.0, 20_000)}
    out = dare(base, [delta], density=0.25, seed=7)["w"]
    kept = out != 0
    assert 0.23 < float(kept.float().mean()) < 0.27
    torch.testing.assert_close(out[kept], delta["w"][kept] / 0.25)  # paper's 1/p rescale
    assert float(out.sum() / delta["w"].sum()) == pytest.approx(1.0, abs=0.05)  # unbiased


def test_dare_l1_rescale_matches_the_original_l1_norm() -> None:
    base = {"w": torch.zeros(100)}
    delta = {"w": torch.randn(100, generator=torch.Generator().manual_seed(1))}
    out = dare(base, [delta], density=0.3, seed=3, rescale="l1")["w"]
    assert float(out.abs().sum()) == pytest.approx(float(delta["w"].abs().sum()), rel=1e-5)


def test_dare_is_seeded_and_full_density_is_the_mean() -> None:
    base = _sd(0.0, 0.0, 0.0)
    m1, m2 = _sd(1.0, 2.0, 3.0), _sd(3.0, 2.0, -1.0)
    a = dare(base, [m1, m2], density=0.5, seed=11)
    b = dare(base, [m1, m2], density=0.5, seed=11)
    torch.testing.assert_close(a["w"], b["w"])
    full = dare(base, [m1, m2], density=1.0, seed=0, normalize=True)
    torch.testing.assert_close(full["w"], linear([m1, m2])["w"])
    summed = dare(base, [m1, m2], density=1.0, seed=0)  # mergekit default: no normalisation
    torch.testing.assert_close(summed["w"], torch.tensor([4.0, 4.0, 2.0]))
    ties_like = dare(base, [m1, m2], density=1.0, seed=0, sign_consensus=True, normalize=True)
    torch.testing.assert_close(ties_like["w"], torch.tensor([2.0, 2.0, 3.0]))
