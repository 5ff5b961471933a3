"""``relic``: ReLIC's KL regulariser against a naive float64 reference, gradcheck, stop-gradient, errors."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits
from contrastkit.regularizers.relic import RelicKL, relic_kl
from contrastkit.testing import check_regularizer


def naive_kl(p_logits: list[list[float]], q_logits: list[list[float]]) -> float:
    """Mean over rows of sum_j p_j (log p_j - log q_j), softmaxes written out with math.exp."""
    total = 0.0
    for p_row, q_row in zip(p_logits, q_logits, strict=True):
        zp = sum(math.exp(v) for v in p_row)
        zq = sum(math.exp(v) for v in q_row)
        for a, b in zip(p_row, q_row, strict=True):
            p, q = math.exp(a) / zp, math.exp(b) / zq
            total += p * (math.log(p) - math.log(q))
    return total / len(p_logits)


def pair(logits: torch.Tensor, anchor: int = 0) -> PairLogits:
    return PairLogits(logits=logits, target=torch.arange(logits.shape[0]), anchor_view=anchor, target_view=1 - anchor)


@pytest.mark.parametrize("seed", range(6))
def test_matches_naive_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, k = int(torch.randint(1, 9, (1,), generator=gen)), int(torch.randint(2, 20, (1,), generator=gen))
    tau = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
    # Logits as a critic makes them: cosine similarities over a temperature.
    p = (torch.rand(b, k, generator=gen, dtype=torch.float64) * 2 - 1) / tau
    q = (torch.rand(b, k, generator=gen, dtype=torch.float64) * 2 - 1) / tau
    alpha = float(torch.empty(1).uniform_(0.1, 3.0, generator=gen))
    expected = naive_kl(p.tolist(), q.tolist())
    assert float(relic_kl(p, q)) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert float(RelicKL(alpha=alpha)(pair(p), pair(q, 1))) == pytest.approx(alpha * expected, rel=1e-10, abs=1e-12)
    symmetric = RelicKL(alpha=alpha, symmetric=True)(pair(p), pair(q, 1))
    reverse = naive_kl(q.tolist(), p.tolist())
    assert float(symmetric) == pytest.approx(alpha * 0.5 * (expected + reverse), rel=1e-10, abs=1e-12)


def test_zero_when_the_two_distributions_coincide() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 9, dtype=torch.float64)
    assert float(RelicKL(alpha=4.0)(pair(logits), pair(logits.clone(), 1))) == pytest.approx(0.0, abs=1e-12)
    # The same distribution from logits shifted per row (softmax ignores the shift).
    shifted = logits + torch.randn(5, 1, dtype=torch.float64) * 10
    assert float(RelicKL(symmetric=True)(pair(logits), pair(shifted, 1))) == pytest.approx(0.0, abs=1e-12)
    # And it is positive as soon as they differ.
    assert float(RelicKL()(pair(logits), pair(logits.flip(1), 1))) > 1e-3


# (stop_gradient and symmetric) is left out: each direction's target is detached, so the numerical
# gradient (which sees both terms move) differs from the analytic one by design.
@pytest.mark.parametrize(("stop_gradient", "symmetric"), [(True, False), (False, False), (False, True)])
def test_gradcheck_float64(stop_gradient: bool, symmetric: bool) -> None:
    torch.manual_seed(1)
    p = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    # With the stop-gradient the target's analytic gradient is zero by design: check the anchor side only.
    q = torch.randn(3, 4, dtype=torch.float64, requires_grad=not stop_gradient)
    reg = RelicKL(alpha=0.7, stop_gradient=stop_gradient, symmetric=symmetric)
    assert torch.autograd.gradcheck(lambda a, b: reg(pair(a), pair(b, 1)), (p, q))


def test_stop_gradient_makes_the_second_direction_a_fixed_target() -> None:
    torch.manual_seed(2)
    p = torch.randn(4, 6, requires_grad=True)
    q = torch.randn(4, 6, requires_grad=True)
    RelicKL()(pair(p), pair(q, 1)).backward()
    assert p.grad is not None and float(p.grad.abs().sum()) > 0
    assert q.grad is None
    p.grad = None
    RelicKL(stop_gradient=False)(pair(p), pair(q, 1)).backward()
    assert q.grad is not None and float(q.grad.abs().sum()) > 0


def test_contract_and_errors() -> None:
    check_regularizer(RelicKL())
    with pytest.raises(InvalidParameter, match="alpha: must be >= 0"):
        RelicKL(alpha=-1.0)
    with pytest.raises(InvalidParameter, match=r"target_momentum: must be in \[0, 1\]"):
        RelicKL(target_momentum=1.5)
    with pytest.raises(ShapeError, match="use negatives = 'in-batch'"):
        RelicKL()(pair(torch.zeros(2, 3)), pair(torch.zeros(2, 4), 1))
    assert RelicKL(target_momentum=0.99).key_momentum == 0.99 and RelicKL().key_momentum is None
