"""``nnclr``: nearest-neighbour positives from a FIFO support queue, against a naive float64 reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit import Pipeline
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter
from contrastkit.negatives.nearest_neighbour import NearestNeighbourPositives
from contrastkit.objectives.infonce import info_nce


def naive_nnclr(z1: torch.Tensor, z2: torch.Tensor, support: torch.Tensor, tau: float) -> float:
    """NNCLR's eq. 2 for one direction, written out: NN by Euclidean distance on unit vectors."""
    z1, z2, support = (F.normalize(t.double(), dim=1) for t in (z1, z2, support))
    total = 0.0
    for i in range(len(z1)):
        distances = [float((z1[i] - q).norm()) for q in support]
        nn_i = support[distances.index(min(distances))]
        numerator = math.exp(float(nn_i @ z2[i]) / tau)
        total += -math.log(numerator / sum(math.exp(float(nn_i @ z2[k]) / tau) for k in range(len(z2))))
    return total / len(z1)


@pytest.mark.parametrize("seed", range(4))
def test_loss_matches_the_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, d, q = 7, 5, 11
    tau = float(torch.empty(1).uniform_(0.1, 1.0, generator=gen))
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=tau)
    sampler = NearestNeighbourPositives(num_views=2, dataset_size=100, embedding_dim=d, size=q).double()
    support = torch.randn(q, d, generator=gen, dtype=torch.float64)
    sampler.support = F.normalize(support, dim=1)
    z1 = critic.embed(torch.randn(b, d, generator=gen, dtype=torch.float64), 0)
    z2 = critic.embed(torch.randn(b, d, generator=gen, dtype=torch.float64), 1)
    pair = sampler.pair_logits(critic, z1, z2, index=torch.arange(b), anchor_view=0, target_view=1)
    assert float(info_nce(pair.logits, pair.target)) == pytest.approx(naive_nnclr(z1, z2, support, tau), rel=1e-10)


def test_the_gradient_reaches_the_target_side_only() -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=0.2)
    sampler = NearestNeighbourPositives(num_views=2, dataset_size=10, embedding_dim=4, size=8)
    a, p = torch.randn(5, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    pair = sampler.pair_logits(critic, critic.embed(a, 0), critic.embed(p, 1), index=torch.arange(5),
                               anchor_view=0, target_view=1)
    info_nce(pair.logits, pair.target).backward()
    assert a.grad is None or not a.grad.abs().sum()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_update_is_a_fifo_of_view_one_that_wraps() -> None:
    sampler = NearestNeighbourPositives(num_views=2, dataset_size=10, embedding_dim=2, size=5)
    first, second = torch.arange(6.0).view(3, 2), 10 + torch.arange(6.0).view(3, 2)
    sampler.update([first, -first], torch.arange(3))
    sampler.update([second, -second], torch.arange(3))
    assert int(sampler.ptr) == 1
    assert torch.equal(sampler.support[:1], second[2:]) and torch.equal(sampler.support[1:3], first[1:])
    assert torch.equal(sampler.support[3:], second[:2])


def test_an_anchor_in_the_support_set_is_its_own_neighbour() -> None:
    sampler = NearestNeighbourPositives(num_views=2, dataset_size=10, embedding_dim=3, size=4)
    z = F.normalize(torch.randn(4, 3), dim=1)
    sampler.update([z, z], torch.arange(4))
    assert torch.allclose(sampler.supplied_anchors(z), z)


def test_trains_in_a_pipeline_and_checkpoints_its_queue() -> None:
    pipe = Pipeline(data={"name": "colorful-moving-digits", "size": 32}, encoder={"name": "convnet", "width": 4,
                    "depth": 2}, negatives={"name": "nnclr", "size": 64})
    items = [pipe.dataset[i] for i in range(16)]
    batch = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
    before = pipe.negatives.support.clone()
    output = pipe(batch)
    assert torch.isfinite(output.loss)
    assert not torch.equal(before, pipe.negatives.support)
    assert "negatives.support" in pipe.state_dict() and "negatives.ptr" in pipe.state_dict()


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InvalidParameter, match="size"):
        NearestNeighbourPositives(num_views=2, dataset_size=10, embedding_dim=4, size=0)
    with pytest.raises(InvalidParameter, match="num_views"):
        NearestNeighbourPositives(num_views=1, dataset_size=10, embedding_dim=4)
