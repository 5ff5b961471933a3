"""``dcl``: Yeh et al.'s DCL and DCLW against naive float64 references (and lightly's DCLLoss where installed)."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit import Pipeline
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits, PairObjective
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.dcl import DecoupledContrastiveLoss, decoupled_contrastive_loss, von_mises_fisher_weights
from contrastkit.testing import check_objective, check_registered

NEG_INF = float("-inf")


def naive_dcl(logits: torch.Tensor, target: torch.Tensor, weights: list[float] | None = None) -> torch.Tensor:
    """The paper's formula anchor by anchor, in float64: mean_b(-w_b s+ + log sum_{k != +} exp(s-_k))."""
    terms = []
    for b in range(logits.shape[0]):
        w = 1.0 if weights is None else weights[b]
        positive = logits[b, int(target[b])]
        negatives = [logits[b, k] for k in range(logits.shape[1]) if k != int(target[b]) and logits[b, k] > -math.inf]
        if not negatives:
            continue  # no negative: no DCL term for this anchor
        terms.append(-w * positive + torch.log(sum(torch.exp(s) for s in negatives)))
    if not terms:
        return logits.new_zeros(())
    return sum(terms) / len(terms)


def naive_simclr_dcl(z1: torch.Tensor, z2: torch.Tensor, tau: float, sigma: float | None) -> float:
    """Eq. 6 (and DCLW's eq. 7 weights) on 2B views, one direction per view, summed; plain floats.

    For anchor i of view a: -w_i <z_i^a, z_i^b>/tau + log(sum_{j != i} e^{<z_i^a, z_j^b>/tau} + e^{<z_i^a, z_j^a>/tau}).
    """
    z1 = (z1 / z1.norm(dim=1, keepdim=True)).tolist()
    z2 = (z2 / z2.norm(dim=1, keepdim=True)).tolist()
    n = len(z1)

    def dot(u: list[float], v: list[float]) -> float:
        return sum(a * b for a, b in zip(u, v))

    agreement = [dot(z1[i], z2[i]) for i in range(n)]
    if sigma is None:
        weights = [1.0] * n
    else:
        mean = sum(math.exp(c / sigma) for c in agreement) / n
        weights = [2.0 - math.exp(c / sigma) / mean for c in agreement]
    total = 0.0
    for a, b in ((z1, z2), (z2, z1)):
        direction = 0.0
        for i in range(n):
            denominator = sum(math.exp(dot(a[i], b[j]) / tau) + math.exp(dot(a[i], a[j]) / tau)
                              for j in range(n) if j != i)
            direction += -weights[i] * dot(a[i], b[i]) / tau + math.log(denominator)
        total += direction / n
    return total


def contrastkit_simclr_dcl(z1: torch.Tensor, z2: torch.Tensor, tau: float, sigma: float | None) -> torch.Tensor:
    """contrastkit's path: cosine critic, in-batch with same-view negatives, pair_loss in both directions."""
    critic = CosineCritic(feature_dims=(z1.shape[1], z2.shape[1]), head="none", temperature=tau)
    sampler = InBatchNegatives(num_views=2, dataset_size=z1.shape[0], embedding_dim=z1.shape[1])
    objective = DecoupledContrastiveLoss(sigma=sigma, same_view_negatives=True)
    e1, e2 = critic.embed(z1, 0), critic.embed(z2, 1)
    total = z1.new_zeros(())
    for a, b, i, j in ((e1, e2, 0, 1), (e2, e1, 1, 0)):
        pair = sampler.pair_logits(critic, a, b, index=torch.arange(len(a)), anchor_view=i, target_view=j, same_view=True)
        total = total + objective.pair_loss(PairLogits(logits=pair.logits, target=pair.target, anchor_view=i,
                                                       target_view=j, anchors=a, positives=b))
    return total


# -- against the references -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_matches_the_naive_loop_in_value_and_gradient(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(7, 9, generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, 9, (7,), generator=generator)
    fast_in = logits.clone().requires_grad_(True)
    slow_in = logits.clone().requires_grad_(True)
    fast = decoupled_contrastive_loss(fast_in, target)
    slow = naive_dcl(slow_in, target)
    fast.backward()
    slow.backward()
    assert torch.allclose(fast, slow, atol=1e-10)
    assert torch.allclose(fast_in.grad, slow_in.grad, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_form_matches_the_naive_loop(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 8, generator=generator, dtype=torch.float64) * 2
    target = torch.randint(0, 8, (6,), generator=generator)
    weights = torch.rand(6, generator=generator, dtype=torch.float64) * 3 - 1
    got = decoupled_contrastive_loss(logits, target, positive_weights=weights)
    assert float(got) == pytest.approx(float(naive_dcl(logits, target, weights.tolist())), abs=1e-10)


@pytest.mark.parametrize("sigma", [None, 0.5, 0.1])
@pytest.mark.parametrize("seed", range(3))
def test_simclr_layout_matches_the_papers_equations(seed: int, sigma: float | None) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, d = int(torch.randint(3, 16, (1,), generator=gen)), int(torch.randint(2, 10, (1,), generator=gen))
    tau = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
    z1, z2 = torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64)
    expected = naive_simclr_dcl(z1, z2, tau, sigma)
    assert float(contrastkit_simclr_dcl(z1, z2, tau, sigma)) == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("sigma", [None, 0.5])
def test_matches_lightly(sigma: float | None) -> None:
    """lightly's DCLLoss / DCLWLoss return the mean of the two directions: half the two-way sum."""
    loss = pytest.importorskip("lightly.loss")
    gen = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(10, 6, generator=gen, dtype=torch.float64), torch.randn(10, 6, generator=gen, dtype=torch.float64)
    reference = loss.DCLLoss(temperature=0.2) if sigma is None else loss.DCLWLoss(temperature=0.2, sigma=sigma)
    assert float(contrastkit_simclr_dcl(z1, z2, 0.2, sigma)) / 2 == pytest.approx(float(reference(z1, z2)), rel=1e-10)


def test_float32_matches_float64() -> None:
    logits = torch.randn(16, 17, dtype=torch.float64) * 5
    target = torch.arange(16)
    got = decoupled_contrastive_loss(logits.float(), target).double()
    assert torch.allclose(got, naive_dcl(logits, target), atol=1e-4)


# -- special cases --------------------------------------------------------------------------------
def test_ignores_minus_inf_columns_and_drops_anchors_without_negatives() -> None:
    logits = torch.randn(5, 6, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 4])
    logits[:, 5] = NEG_INF  # an excluded column in every row
    logits[1, 0] = NEG_INF  # one more in row 1
    logits[3, [0, 1, 2, 4]] = NEG_INF  # row 3: only its positive is left
    x = logits.clone().requires_grad_(True)
    loss = decoupled_contrastive_loss(x, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.allclose(loss, naive_dcl(logits, target), atol=1e-10)
    assert torch.isfinite(x.grad).all()
    assert (x.grad[3] == 0).all() and (x.grad[:, 5] == 0).all()


def test_no_usable_anchor_is_zero_with_finite_gradient() -> None:
    logits = torch.tensor([[1.0, NEG_INF], [NEG_INF, 2.0]], requires_grad=True)
    loss = decoupled_contrastive_loss(logits, torch.tensor([0, 1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(logits.grad).all()


def test_gradcheck_float64_with_excluded_columns() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.tensor([0, 3, 1, 5, 2])
    excluded = torch.zeros(5, 6, dtype=torch.bool)
    excluded[0, 4] = excluded[1, 0] = True
    excluded[2, [0, 2, 3, 4, 5]] = True
    weights = torch.tensor([1.0, 0.5, 1.5, -0.2, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: decoupled_contrastive_loss(x.masked_fill(excluded, NEG_INF), target, positive_weights=weights), (logits,)
    )


def test_differs_from_infonce_by_the_positive_in_the_denominator() -> None:
    logits = torch.randn(4, 5, dtype=torch.float64)
    target = torch.tensor([0, 2, 4, 1])
    infonce = torch.nn.functional.cross_entropy(logits, target)
    # InfoNCE = mean(log(exp(s+) + sum exp(s-)) - s+) > DCL = mean(log(sum exp(s-)) - s+)
    assert float(decoupled_contrastive_loss(logits, target)) < float(infonce)


def test_weights_average_to_one_carry_no_gradient_and_reward_less_agreement() -> None:
    gen = torch.Generator().manual_seed(0)
    anchors = torch.randn(8, 5, generator=gen, requires_grad=True)
    positives = torch.randn(8, 5, generator=gen)
    weights = von_mises_fisher_weights(anchors, positives, sigma=0.5)
    assert not weights.requires_grad and weights.shape == (8,)
    assert float(weights.mean()) == pytest.approx(1.0, abs=1e-6)
    cos = torch.nn.functional.cosine_similarity(anchors, positives, dim=1).detach()
    assert int(weights.argmin()) == int(cos.argmax()) and int(weights.argmax()) == int(cos.argmin())
    # A large sigma flattens the softmax: every weight tends to 1, DCL.
    assert torch.allclose(von_mises_fisher_weights(anchors, positives, sigma=1e6), torch.ones(8), atol=1e-5)


def test_dclw_needs_the_embeddings() -> None:
    objective = DecoupledContrastiveLoss(sigma=0.5)
    pair = PairLogits(logits=torch.randn(3, 4), target=torch.arange(3), anchor_view=0, target_view=1)
    with pytest.raises(ValueError, match="needs the pair's embeddings"):
        objective.pair_loss(pair)
    with pytest.raises(ValueError, match="call pair_loss"):
        objective(pair.logits, pair.target)


def test_rejects_bad_shapes_and_sigma() -> None:
    with pytest.raises(ShapeError, match="logits must be"):
        decoupled_contrastive_loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ShapeError, match="target must be"):
        decoupled_contrastive_loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ShapeError, match="positive_weights"):
        decoupled_contrastive_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), positive_weights=torch.ones(3))
    for bad in (0, -0.5, math.inf, math.nan, True, "0.5"):
        with pytest.raises(InvalidParameter, match="^sigma: ") as caught:
            DecoupledContrastiveLoss(sigma=bad)  # type: ignore[arg-type]
        assert caught.value.parameter == "sigma"


# -- the contract and the pipeline ----------------------------------------------------------------
def test_contract() -> None:
    check_registered("objectives", "dcl")
    check_objective(DecoupledContrastiveLoss(two_way=False, same_view_negatives=True))


def test_attributes_and_no_mi_bound() -> None:
    objective = DecoupledContrastiveLoss()
    assert objective.two_way is True and objective.sigma is None and objective.same_view_negatives is False
    assert isinstance(objective, PairObjective)
    assert objective.mi_lower_bound(torch.tensor(1.0), 63) is None
    assert DecoupledContrastiveLoss(sigma=0.5).mi_lower_bound(torch.tensor(1.0), 63) is None
    assert "sigma=0.5" in repr(DecoupledContrastiveLoss(sigma=0.5))


@pytest.mark.parametrize("table", [{"name": "dcl"}, {"name": "dcl", "sigma": 0.5, "same_view_negatives": True}])
def test_pipeline_logs_no_mi_bound(table: dict) -> None:
    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}, critic={"name": "cosine", "temperature": 0.2},
                    objective=table, dataset_size=8)
    out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    assert torch.isfinite(out.loss) and "loss/v1-v2" in out.metrics
    assert not any(key.startswith("mi_lower_bound/") for key in out.metrics)
    out.loss.backward()
