"""Two-way InfoNCE against a naive float64 reference, gradcheck, and the MI lower bound."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.critics.cosine import CosineCritic
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.infonce import InfoNCE, info_nce


def naive_two_way_infonce(u: torch.Tensor, v: torch.Tensor, tau: float) -> float:
    """CMC's L(V1,V2) = L(V1->V2) + L(V2->V1), written out per anchor in float64."""
    u = u.double()
    v = v.double()
    u = u / u.norm(dim=1, keepdim=True)
    v = v / v.norm(dim=1, keepdim=True)
    n = u.shape[0]

    def one_way(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for i in range(n):
            numerator = math.exp(float(a[i] @ b[i]) / tau)
            denominator = sum(math.exp(float(a[i] @ b[j]) / tau) for j in range(n))
            total += -math.log(numerator / denominator)
        return total / n

    return one_way(u, v) + one_way(v, u)


@pytest.mark.parametrize("seed", range(6))
def test_two_way_infonce_matches_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 40, (1,), generator=gen))
    d = int(torch.randint(2, 24, (1,), generator=gen))
    tau = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
    u, v = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)

    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=tau)
    sampler = InBatchNegatives(num_views=2, dataset_size=n, embedding_dim=d)
    objective = InfoNCE(two_way=True)
    z1, z2 = critic.embed(u, 0), critic.embed(v, 1)
    index = torch.arange(n)
    forward = sampler.pair_logits(critic, z1, z2, index=index, anchor_view=0, target_view=1)
    backward = sampler.pair_logits(critic, z2, z1, index=index, anchor_view=1, target_view=0)
    loss = objective(forward.logits, forward.target) + objective(backward.logits, backward.target)
    assert float(loss) == pytest.approx(naive_two_way_infonce(u, v, tau), rel=1e-4, abs=1e-4)


def test_pipeline_loss_is_two_way_infonce_of_its_embeddings() -> None:
    from contrastkit import Pipeline

    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2},
                    critic={"name": "cosine", "temperature": 0.3}).eval()
    out = pipe({"image": torch.rand(12, 3, 16, 16), "index": torch.arange(12)})
    # Embeddings are already normalised; the reference re-normalises harmlessly.
    expected = naive_two_way_infonce(out.embeddings[0].detach(), out.embeddings[1].detach(), 0.3)
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-4)
    assert float(out.metrics["loss/v1-v2"]) == pytest.approx(expected, rel=1e-4)
    assert float(out.metrics["mi_lower_bound/v1-v2"]) == pytest.approx(math.log(12) - expected / 2, abs=1e-4)


def test_gradcheck_float64() -> None:
    logits = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 1, 5, 2])
    assert torch.autograd.gradcheck(lambda x: info_nce(x, target), (logits,))


def test_mi_lower_bound_and_extremes() -> None:
    objective = InfoNCE()
    # Uniform logits: loss = log(K+1), bound = 0.
    loss = objective(torch.zeros(4, 8), torch.zeros(4, dtype=torch.long))
    assert float(loss) == pytest.approx(math.log(8))
    assert float(objective.mi_lower_bound(loss, 7)) == pytest.approx(0.0, abs=1e-6)
    # A confident, correct critic: loss -> 0 and the bound -> log(K+1).
    logits = torch.full((4, 8), -50.0)
    logits[:, 2] = 50.0
    loss = objective(logits, torch.full((4,), 2))
    assert float(objective.mi_lower_bound(loss, 7)) == pytest.approx(math.log(8), abs=1e-4)


def test_excluded_columns_are_ignored() -> None:
    logits = torch.tensor([[1.0, 0.5, float("-inf")]])
    expected = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.5)))
    assert float(info_nce(logits, torch.tensor([0]))) == pytest.approx(expected, rel=1e-6)
