"""``align-uniform``: Wang & Isola's alignment and uniformity against a naive float64 reference."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits
from contrastkit.objectives.align_uniform import AlignUniform


def naive(x: torch.Tensor, y: torch.Tensor, *, alpha: float, t: float, lam: float) -> float:
    x = x.double() / x.double().norm(dim=1, keepdim=True)
    y = y.double() / y.double().norm(dim=1, keepdim=True)
    n = x.shape[0]
    align = sum(float((x[i] - y[i]).norm()) ** alpha for i in range(n)) / n

    def uniform(z: torch.Tensor) -> float:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        return math.log(sum(math.exp(-t * float((z[i] - z[j]).norm()) ** 2) for i, j in pairs) / len(pairs))

    return align + lam * (uniform(x) + uniform(y)) / 2


def pair_of(x: torch.Tensor, y: torch.Tensor) -> PairLogits:
    return PairLogits(logits=torch.zeros(len(x), len(x)), target=torch.arange(len(x)), anchor_view=0, target_view=1,
                      anchors=x, positives=y)


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n, d = int(torch.randint(2, 16, (1,), generator=gen)), int(torch.randint(2, 10, (1,), generator=gen))
    alpha, t, lam = (float(torch.empty(1).uniform_(lo, hi, generator=gen)) for lo, hi in ((1, 3), (0.5, 4), (0, 2)))
    x, y = torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randn(n, d, generator=gen, dtype=torch.float64)
    got = AlignUniform(alpha=alpha, t=t, lam=lam).pair_loss(pair_of(x, y))
    assert float(got) == pytest.approx(naive(x, y, alpha=alpha, t=t, lam=lam), rel=1e-10, abs=1e-12)


def test_it_is_a_loss_on_embeddings_not_logits() -> None:
    x, y = torch.randn(6, 4), torch.randn(6, 4)
    loss = AlignUniform()
    a = loss.pair_loss(pair_of(x, y))
    b = loss.pair_loss(PairLogits(logits=torch.randn(6, 6), target=torch.arange(6), anchor_view=0, target_view=1,
                                  anchors=x, positives=y))
    assert torch.equal(a, b)
    x.requires_grad_(True)
    loss.pair_loss(pair_of(x, y)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_aligned_pairs_have_zero_alignment_and_spread_points_lower_uniformity() -> None:
    z = torch.nn.functional.normalize(torch.randn(32, 3), dim=1)
    only_align = AlignUniform(lam=0.0)
    assert float(only_align.pair_loss(pair_of(z, z))) == pytest.approx(0.0, abs=1e-6)
    clumped = torch.nn.functional.normalize(torch.ones(32, 3) + 0.01 * torch.randn(32, 3), dim=1)
    assert float(AlignUniform().pair_loss(pair_of(z, z))) < float(AlignUniform().pair_loss(pair_of(clumped, clumped)))


def test_without_embeddings_or_with_bad_parameters_it_says_so() -> None:
    with pytest.raises(ShapeError, match="no embeddings"):
        AlignUniform().pair_loss(PairLogits(logits=torch.zeros(2, 2), target=torch.arange(2), anchor_view=0,
                                            target_view=1))
    for kwargs in ({"alpha": 0}, {"t": -1}, {"lam": -0.5}):
        with pytest.raises(InvalidParameter):
            AlignUniform(**kwargs)
