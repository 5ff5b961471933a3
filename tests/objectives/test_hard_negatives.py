"""``hard-negatives``: Robinson et al.'s loss against naive float64 references, its special cases and the contract."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from contrastkit import Pipeline
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.debiased import debiased_contrastive_loss
from contrastkit.objectives.hard_negatives import HardNegatives, hard_negative_loss
from contrastkit.objectives.infonce import info_nce
from contrastkit.testing import check_objective, check_registered
from tests.objectives._cases import cosine_case, gradcheck_case, inf_leaf_logits

NEG_INF = float("-inf")


def naive_hard(logits: torch.Tensor, target: torch.Tensor, beta: float, tau_plus: float, min_logit: float) -> float:
    """The importance-weighted, debiased estimator, one anchor at a time in plain floats:
    w_k = e^{beta s-_k} / sum_j e^{beta s-_j};
    N g = max((N sum_k w_k e^{s-_k} - tau+ N e^{s+}) / (1 - tau+), N e^{min_logit}).
    """
    total = 0.0
    for b, row in enumerate(logits.double().tolist()):
        t = int(target[b])
        pos = math.exp(row[t])
        scores = [s for j, s in enumerate(row) if j != t and s != NEG_INF]
        n = len(scores)
        if n:
            importance = [math.exp(beta * s) for s in scores]
            reweighted = n * sum(w * math.exp(s) for w, s in zip(importance, scores)) / sum(importance)
            ng = max((reweighted - tau_plus * n * pos) / (1.0 - tau_plus), n * math.exp(min_logit))
        else:
            ng = 0.0
        total += -math.log(pos / (pos + ng))
    return total / len(target)


def authors_code_hard(z1: torch.Tensor, z2: torch.Tensor, t: float, beta: float, tau_plus: float) -> torch.Tensor:
    """The SimCLR-layout estimator as the paper's code writes it, on 2B views (mean over 2B anchors)."""
    b = z1.shape[0]
    out_1, out_2 = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)
    out = torch.cat([out_1, out_2], dim=0)
    neg = torch.exp(out @ out.T / t)
    mask = torch.ones(2 * b, 2 * b, dtype=torch.bool)
    for i in range(b):
        mask[i, i] = mask[i, i + b] = mask[i + b, i] = mask[i + b, i + b] = False
    neg = neg.masked_select(mask).view(2 * b, -1)
    pos = torch.exp((out_1 * out_2).sum(dim=-1) / t)
    pos = torch.cat([pos, pos], dim=0)
    n = 2 * b - 2
    imp = (beta * neg.log()).exp()
    reweight_neg = (imp * neg).sum(dim=-1) / imp.mean(dim=-1)
    ng = (-tau_plus * n * pos + reweight_neg) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.e ** (-1 / t))
    return (-torch.log(pos / (pos + ng))).mean()


# -- against the references -------------------------------------------------------------------------
@pytest.mark.parametrize(("beta", "tau_plus"), [(0.0, 0.1), (0.5, 0.0), (0.5, 0.1), (1.0, 0.1), (2.0, 0.3), (1.0, 0.9)])
@pytest.mark.parametrize("seed", range(6))
def test_matches_float64_reference(seed: int, beta: float, tau_plus: float) -> None:
    logits, target, t = cosine_case(seed)
    for min_logit in (-1 / t, -0.5 / t):  # the paper's clamp, and a higher one that binds more often
        expected = naive_hard(logits, target, beta, tau_plus, min_logit)
        for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
            got = hard_negative_loss(logits.to(dtype), target, beta=beta, tau_plus=tau_plus, min_logit=min_logit)
            assert float(got) == pytest.approx(expected, rel=tol, abs=tol)
            module = HardNegatives(beta=beta, tau_plus=tau_plus, min_logit=min_logit)
            assert float(module(logits.to(dtype), target)) == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize(("beta", "tau_plus"), [(0.5, 0.1), (1.0, 0.0), (1.0, 0.1)])
@pytest.mark.parametrize("seed", range(3))
def test_simclr_layout_matches_the_authors_estimator(seed: int, beta: float, tau_plus: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, d = int(torch.randint(3, 16, (1,), generator=gen)), int(torch.randint(2, 10, (1,), generator=gen))
    t = float(torch.empty(1).uniform_(0.2, 1.0, generator=gen))
    z1, z2 = torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=t)
    sampler = InBatchNegatives(num_views=2, dataset_size=b, embedding_dim=d)
    objective = HardNegatives(beta=beta, tau_plus=tau_plus, min_logit=-1 / t, same_view_negatives=True)
    e1, e2 = critic.embed(z1, 0), critic.embed(z2, 1)
    total = z1.new_zeros(())
    for a, p, i, j in ((e1, e2, 0, 1), (e2, e1, 1, 0)):
        pair = sampler.pair_logits(critic, a, p, index=torch.arange(b), anchor_view=i, target_view=j, same_view=True)
        total = total + objective(pair.logits, pair.target)
    assert float(total) / 2 == pytest.approx(float(authors_code_hard(z1, z2, t, beta, tau_plus)), rel=1e-10)


# -- special cases --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_beta_zero_and_tau_plus_zero_is_infonce(seed: int) -> None:
    logits, target, t = cosine_case(seed, excluded_fraction=0.2)
    x = logits.clone().requires_grad_(True)
    y = logits.clone().requires_grad_(True)
    ours = hard_negative_loss(x, target, beta=0.0, tau_plus=0.0, min_logit=-1 / t)
    reference = info_nce(y, target)
    ours.backward()
    reference.backward()
    assert float(ours.detach()) == pytest.approx(float(reference.detach()), rel=1e-12, abs=1e-12)
    assert torch.allclose(x.grad, y.grad, atol=1e-12)
    assert float(HardNegatives(beta=0.0, tau_plus=0.0, min_logit=-1 / t)(logits, target)) == pytest.approx(
        float(reference.detach()), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("tau_plus", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(4))
def test_beta_zero_is_debiased(seed: int, tau_plus: float) -> None:
    logits, target, t = cosine_case(seed)
    logits = logits * 1.7  # not cosine-bounded: the identity holds for any logits, clamp included
    for min_logit in (-1 / t, 0.0):
        hard = hard_negative_loss(logits, target, beta=0.0, tau_plus=tau_plus, min_logit=min_logit)
        debiased = debiased_contrastive_loss(logits, target, tau_plus=tau_plus, min_logit=min_logit)
        assert float(hard) == pytest.approx(float(debiased), rel=1e-12, abs=1e-12)


def test_large_beta_keeps_only_the_hardest_negative() -> None:
    logits, target, t = cosine_case(2, excluded_fraction=0.0)
    positive = logits.gather(1, target[:, None]).squeeze(1)
    negatives = logits.scatter(1, target[:, None], NEG_INF)
    n = logits.shape[1] - 1
    # beta -> inf: N sum_k w_k e^{s-_k} -> N e^{max s-}; with tau+ = 0 the loss is softplus(log N + max s- - s+).
    expected = torch.nn.functional.softplus(math.log(n) + negatives.max(dim=1).values - positive).mean()
    got = hard_negative_loss(logits, target, beta=5000.0, tau_plus=0.0, min_logit=-1 / t)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_without_debiasing_the_loss_rises_with_beta_from_infonce(seed: int) -> None:
    """Chebyshev: the weighted mean of e^{s-} with weights increasing in s- is >= the plain mean."""
    logits, target, t = cosine_case(seed)
    values = [float(hard_negative_loss(logits, target, beta=beta, tau_plus=0.0, min_logit=-1 / t))
              for beta in (0.0, 0.25, 0.5, 1.0, 2.0, 8.0)]
    assert values[0] == pytest.approx(float(info_nce(logits, target)), rel=1e-12, abs=1e-12)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))


def test_excluded_column_is_the_same_as_a_missing_column() -> None:
    logits = torch.tensor([[0.4, -1.2, 2.0, 0.7]], dtype=torch.float64)
    with_inf = logits.clone()
    with_inf[0, 2] = NEG_INF
    a = hard_negative_loss(with_inf, torch.tensor([0]), beta=1.0, tau_plus=0.1)
    b = hard_negative_loss(logits[:, [0, 1, 3]], torch.tensor([0]), beta=1.0, tau_plus=0.1)
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_anchor_without_negatives_has_zero_loss_and_finite_gradient() -> None:
    logits = torch.tensor([[1.0, NEG_INF, NEG_INF], [0.0, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1])
    loss = hard_negative_loss(logits, target, beta=1.0, tau_plus=0.1)
    alone = hard_negative_loss(logits[1:].detach(), target[1:], beta=1.0, tau_plus=0.1)
    assert float(loss.detach()) == pytest.approx(float(alone) / 2, rel=1e-12)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[0] == 0).all()


@pytest.mark.parametrize(("beta", "tau_plus"), [(0.0, 0.0), (1.0, 0.0), (0.5, 0.2), (3.0, 0.6)])
def test_gradcheck_float64_with_excluded_columns(beta: float, tau_plus: float) -> None:
    logits, target, excluded = gradcheck_case()
    assert torch.autograd.gradcheck(
        lambda x: hard_negative_loss(x.masked_fill(excluded, NEG_INF), target, beta=beta, tau_plus=tau_plus,
                                     min_logit=-1.5),
        (logits,),
    )


def test_no_nan_with_inf_in_a_leaf_and_large_logits_in_float32() -> None:
    logits, target = inf_leaf_logits()
    loss = hard_negative_loss(logits, target)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(logits.grad).all()
    assert float(logits.grad[0, 1]) == 0.0 and float(logits.grad[1, 0]) == 0.0
    big, target, _ = cosine_case(3, excluded_fraction=0.0)
    x = (big / big.abs().max() * 100).float().requires_grad_(True)  # cos / 0.01; e^{(1 + beta) 100} overflows float32
    value = hard_negative_loss(x, target, beta=2.0, tau_plus=0.1, min_logit=-100.0)
    value.backward()
    assert math.isfinite(float(value.detach())) and torch.isfinite(x.grad).all()


def test_loss_falls_as_the_positive_rises() -> None:
    logits, target, t = cosine_case(4)
    base = float(hard_negative_loss(logits, target, beta=1.0, tau_plus=0.2, min_logit=-1 / t))
    up = logits.clone()
    up[torch.arange(len(target)), target] += 0.5
    assert float(hard_negative_loss(up, target, beta=1.0, tau_plus=0.2, min_logit=-1 / t)) <= base


# -- parameters, the contract and the pipeline ------------------------------------------------------
@pytest.mark.parametrize("bad", [-0.5, math.inf, math.nan, True, "1", None])
def test_bad_beta_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^beta: ") as caught:
        HardNegatives(beta=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "beta"
    with pytest.raises(InvalidParameter, match="^beta: "):
        hard_negative_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), beta=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("parameter", "bad"), [("tau_plus", 1.0), ("tau_plus", -0.01), ("min_logit", math.nan)])
def test_bad_debiasing_parameters_raise_invalid_parameter(parameter: str, bad: float) -> None:
    with pytest.raises(InvalidParameter, match=f"^{parameter}: "):
        HardNegatives(**{parameter: bad})


def test_bad_shapes_raise_shape_error() -> None:
    with pytest.raises(ShapeError, match="hard-negatives"):
        hard_negative_loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def test_contract() -> None:
    check_registered("objectives", "hard-negatives")
    check_objective(HardNegatives(beta=0.0, tau_plus=0.0, two_way=False))
    check_objective(HardNegatives(beta=3.0, tau_plus=0.5, min_logit=-2.0, same_view_negatives=True))


def test_mi_bound_only_without_debiasing() -> None:
    objective = HardNegatives()
    assert (objective.two_way, objective.beta, objective.tau_plus) == (True, 1.0, 0.1)
    assert objective.same_view_negatives is False
    assert objective.mi_lower_bound(torch.tensor(0.3), 7) is None
    bound = HardNegatives(tau_plus=0.0).mi_lower_bound(torch.tensor(0.3), 7)
    assert bound is not None and float(bound) == pytest.approx(math.log(8) - 0.3)
    assert "beta=1.0" in repr(objective)


@pytest.mark.parametrize("table", [{"name": "hard-negatives"},
                                   {"name": "hard-negatives", "beta": 0.5, "tau_plus": 0.0, "same_view_negatives": True}])
def test_pipeline_runs(table: dict) -> None:
    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}, critic={"name": "cosine", "temperature": 0.2},
                    objective=table, dataset_size=8)
    out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    assert torch.isfinite(out.loss) and "loss/v1-v2" in out.metrics
    assert ("mi_lower_bound/v1-v2" in out.metrics) == (table.get("tau_plus", 0.1) == 0.0)
    out.loss.backward()
