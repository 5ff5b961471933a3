"""``supcon``: Khosla et al.'s L_out against a naive float64 reference and pytorch-metric-learning's SupConLoss."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.infonce import info_nce
from contrastkit.objectives.supcon import SupCon, supcon


def naive_supcon(z: torch.Tensor, labels: list[int], tau: float) -> float:
    """L_out over all 2B views, written out per anchor: A(i) = every other view, P(i) = same label."""
    z = z.double() / z.double().norm(dim=1, keepdim=True)
    n, total = z.shape[0], 0.0
    for i in range(n):
        denominator = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(n) if a != i)
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denominator) for p in positives) / len(positives)
    return total / n


def two_way_supcon(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """contrastkit's path: cosine critic, in-batch with same-view negatives, the sampler's mask, both directions."""
    critic = CosineCritic(feature_dims=(z1.shape[1], z2.shape[1]), head="none", temperature=tau)
    sampler = InBatchNegatives(num_views=2, dataset_size=z1.shape[0], embedding_dim=z1.shape[1])
    objective = SupCon(label="y")
    e1, e2 = critic.embed(z1, 0), critic.embed(z2, 1)
    total = z1.new_zeros(())
    for a, b, i, j in ((e1, e2, 0, 1), (e2, e1, 1, 0)):
        pair = sampler.pair_logits(critic, a, b, index=torch.arange(len(a)), anchor_view=i, target_view=j,
                                   same_view=True)
        mask = sampler.positive_mask(pair, labels)
        total = total + objective.pair_loss(PairLogits(logits=pair.logits, target=pair.target, anchor_view=i,
                                                       target_view=j, labels=labels, positive_mask=mask))
    return total


@pytest.mark.parametrize("seed", range(5))
def test_two_way_supcon_is_twice_the_papers_mean_over_all_views(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, d = int(torch.randint(3, 20, (1,), generator=gen)), int(torch.randint(2, 12, (1,), generator=gen))
    tau = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
    z1, z2 = torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (b,), generator=gen)
    expected = naive_supcon(torch.cat([z1, z2]), labels.tolist() * 2, tau)
    assert float(two_way_supcon(z1, z2, labels, tau)) == pytest.approx(2 * expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_matches_pytorch_metric_learning(seed: int) -> None:
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    gen = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(12, 8, generator=gen, dtype=torch.float64), torch.randn(12, 8, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (12,), generator=gen)
    reference = losses.SupConLoss(temperature=0.1)(torch.cat([z1, z2]), torch.cat([labels, labels]))
    assert float(two_way_supcon(z1, z2, labels, 0.1)) / 2 == pytest.approx(float(reference), rel=1e-10)


def test_without_labels_it_is_nt_xent() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(6, 11), torch.arange(6)
    pair = PairLogits(logits=logits, target=target, anchor_view=0, target_view=1)
    assert torch.allclose(SupCon().pair_loss(pair), info_nce(logits, target))
    assert torch.allclose(SupCon()(logits, target), info_nce(logits, target))
    assert SupCon().mi_lower_bound(torch.tensor(1.0), 10) is not None
    assert SupCon(label="digit").mi_lower_bound(torch.tensor(1.0), 10) is None


def test_masked_columns_are_neither_candidates_nor_positives() -> None:
    logits = torch.tensor([[1.0, float("-inf"), 0.5]])
    mask = torch.tensor([[True, True, False]])  # the -inf column is marked but must be ignored
    expected = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.5)))
    assert float(supcon(logits, mask)) == pytest.approx(expected)
    logits.requires_grad_(True)
    supcon(logits, mask).backward()
    assert torch.isfinite(logits.grad).all()


def test_more_positives_change_the_loss() -> None:
    logits = torch.tensor([[3.0, 1.0, -1.0]])
    one = supcon(logits, torch.tensor([[True, False, False]]))
    two = supcon(logits, torch.tensor([[True, True, False]]))
    assert float(two) > float(one)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidParameter, match="label"):
        SupCon(label="")
    with pytest.raises(ShapeError, match="positive_mask"):
        supcon(torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))
