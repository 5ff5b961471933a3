"""``debiased``: Chuang et al.'s debiased loss against naive float64 references, its special cases and the contract."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit import Pipeline
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.debiased import DEFAULT_MIN_LOGIT, DebiasedContrastiveLoss, debiased_contrastive_loss
from contrastkit.objectives.infonce import info_nce
from contrastkit.testing import check_objective, check_registered
from tests.objectives._cases import cosine_case, gradcheck_case, inf_leaf_logits

NEG_INF = float("-inf")


def naive_debiased(logits: torch.Tensor, target: torch.Tensor, tau_plus: float, min_logit: float) -> float:
    """Eq. 6 with M = 1, one anchor at a time in plain floats:
    N g = max((sum_k e^{s-_k} - tau+ N e^{s+}) / (1 - tau+), N e^{min_logit}); -log(e^{s+} / (e^{s+} + N g)).
    """
    total = 0.0
    rows = logits.double().tolist()
    for b, row in enumerate(rows):
        t = int(target[b])
        pos = math.exp(row[t])
        negatives = [math.exp(s) for j, s in enumerate(row) if j != t and s != NEG_INF]
        n = len(negatives)
        ng = max((sum(negatives) - tau_plus * n * pos) / (1.0 - tau_plus), n * math.exp(min_logit)) if n else 0.0
        total += -math.log(pos / (pos + ng))
    return total / len(rows)


def authors_code_debiased(z1: torch.Tensor, z2: torch.Tensor, t: float, tau_plus: float) -> torch.Tensor:
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
    ng = (-tau_plus * n * pos + neg.sum(dim=-1)) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.e ** (-1 / t))
    return (-torch.log(pos / (pos + ng))).mean()


def two_way_simclr(objective: torch.nn.Module, z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """contrastkit's path: cosine critic, in-batch with same-view negatives, both directions added."""
    critic = CosineCritic(feature_dims=(z1.shape[1], z2.shape[1]), head="none", temperature=t)
    sampler = InBatchNegatives(num_views=2, dataset_size=z1.shape[0], embedding_dim=z1.shape[1])
    e1, e2 = critic.embed(z1, 0), critic.embed(z2, 1)
    total = z1.new_zeros(())
    for a, b, i, j in ((e1, e2, 0, 1), (e2, e1, 1, 0)):
        pair = sampler.pair_logits(critic, a, b, index=torch.arange(len(a)), anchor_view=i, target_view=j, same_view=True)
        total = total + objective(pair.logits, pair.target)
    return total


# -- against the references -------------------------------------------------------------------------
@pytest.mark.parametrize("tau_plus", [0.0, 0.05, 0.1, 0.3, 0.9])
@pytest.mark.parametrize("seed", range(6))
def test_matches_float64_reference(seed: int, tau_plus: float) -> None:
    logits, target, t = cosine_case(seed)
    for min_logit in (-1 / t, -0.5 / t):  # the paper's clamp, and a higher one that binds more often
        expected = naive_debiased(logits, target, tau_plus, min_logit)
        for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
            got = debiased_contrastive_loss(logits.to(dtype), target, tau_plus=tau_plus, min_logit=min_logit)
            assert float(got) == pytest.approx(expected, rel=tol, abs=tol)
            module = DebiasedContrastiveLoss(tau_plus=tau_plus, min_logit=min_logit)
            assert float(module(logits.to(dtype), target)) == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize("tau_plus", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_simclr_layout_matches_the_authors_estimator(seed: int, tau_plus: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    b, d = int(torch.randint(3, 16, (1,), generator=gen)), int(torch.randint(2, 10, (1,), generator=gen))
    t = float(torch.empty(1).uniform_(0.1, 1.0, generator=gen))
    z1, z2 = torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64)
    objective = DebiasedContrastiveLoss(tau_plus=tau_plus, min_logit=-1 / t, same_view_negatives=True)
    expected = authors_code_debiased(z1, z2, t, tau_plus)
    assert float(two_way_simclr(objective, z1, z2, t)) / 2 == pytest.approx(float(expected), rel=1e-10)


# -- special cases --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_tau_plus_zero_is_infonce_on_cosine_logits(seed: int) -> None:
    logits, target, t = cosine_case(seed, excluded_fraction=0.2)
    x = logits.clone().requires_grad_(True)
    y = logits.clone().requires_grad_(True)
    ours = debiased_contrastive_loss(x, target, tau_plus=0.0, min_logit=-1 / t)
    reference = info_nce(y, target)
    ours.backward()
    reference.backward()
    assert float(ours.detach()) == pytest.approx(float(reference.detach()), rel=1e-12, abs=1e-12)
    assert torch.allclose(x.grad, y.grad, atol=1e-12)


def test_clamp_binds_when_the_correction_exceeds_the_negatives() -> None:
    # s+ = 3 and two negatives at 0: sum e^{s-} = 2 < tau+ N e^{s+} = 0.5 * 2 * e^3, so N g = N e^{min_logit}.
    logits = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)
    loss = debiased_contrastive_loss(logits, torch.tensor([0]), tau_plus=0.5, min_logit=-2.0)
    assert float(loss) == pytest.approx(-math.log(math.exp(3) / (math.exp(3) + 2 * math.exp(-2))), rel=1e-12)
    # Without the correction binding, the loss is below InfoNCE's: the false negatives' share is removed.
    easy = torch.tensor([[1.0, 0.5, 0.8]], dtype=torch.float64)
    assert float(debiased_contrastive_loss(easy, torch.tensor([0]), tau_plus=0.1)) < float(info_nce(easy, torch.tensor([0])))


def test_excluded_column_is_the_same_as_a_missing_column() -> None:
    logits = torch.tensor([[0.4, -1.2, 2.0, 0.7]], dtype=torch.float64)
    with_inf = logits.clone()
    with_inf[0, 2] = NEG_INF
    a = debiased_contrastive_loss(with_inf, torch.tensor([0]), tau_plus=0.1)
    b = debiased_contrastive_loss(logits[:, [0, 1, 3]], torch.tensor([0]), tau_plus=0.1)
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_anchor_without_negatives_has_zero_loss_and_counts_in_the_mean() -> None:
    logits = torch.tensor([[1.0, NEG_INF, NEG_INF], [0.0, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1])
    loss = debiased_contrastive_loss(logits, target, tau_plus=0.1)
    alone = debiased_contrastive_loss(logits[1:].detach(), target[1:], tau_plus=0.1)
    assert float(loss.detach()) == pytest.approx(float(alone) / 2, rel=1e-12)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[0] == 0).all()
    everything_masked = torch.tensor([[1.0, NEG_INF]], requires_grad=True)
    zero = debiased_contrastive_loss(everything_masked, torch.tensor([0]))
    zero.backward()
    assert float(zero.detach()) == 0.0 and torch.isfinite(everything_masked.grad).all()


@pytest.mark.parametrize("tau_plus", [0.0, 0.1, 0.6])
def test_gradcheck_float64_with_excluded_columns(tau_plus: float) -> None:
    logits, target, excluded = gradcheck_case()
    assert torch.autograd.gradcheck(
        lambda x: debiased_contrastive_loss(x.masked_fill(excluded, NEG_INF), target, tau_plus=tau_plus, min_logit=-1.5),
        (logits,),
    )


def test_no_nan_with_inf_in_a_leaf_and_large_logits_in_float32() -> None:
    logits, target = inf_leaf_logits()
    loss = debiased_contrastive_loss(logits, target)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(logits.grad).all()
    assert float(logits.grad[0, 1]) == 0.0 and float(logits.grad[1, 0]) == 0.0
    # cos / 0.01 reaches +-100: e^100 overflows float32, the log-space form does not.
    big, target, _ = cosine_case(3, excluded_fraction=0.0)
    big = big / big.abs().max() * 100
    for tau_plus in (0.0, 0.1):
        x = big.float().requires_grad_(True)
        value = debiased_contrastive_loss(x, target, tau_plus=tau_plus, min_logit=-100.0)
        value.backward()
        assert math.isfinite(float(value.detach())) and torch.isfinite(x.grad).all()
        expected = naive_debiased_logspace(big, target, tau_plus, -100.0)
        assert float(value.detach()) == pytest.approx(expected, rel=1e-4, abs=1e-4)


def naive_debiased_logspace(logits: torch.Tensor, target: torch.Tensor, tau_plus: float, min_logit: float) -> float:
    """naive_debiased with every exponential scaled by e^{-m} (m the row's largest logit), for huge logits."""
    total = 0.0
    for b, row in enumerate(logits.double().tolist()):
        t = int(target[b])
        m = max(s for s in row if s != NEG_INF)
        pos = math.exp(row[t] - m)
        negatives = [math.exp(s - m) for j, s in enumerate(row) if j != t and s != NEG_INF]
        n = len(negatives)
        ng = max((sum(negatives) - tau_plus * n * pos) / (1 - tau_plus), n * math.exp(min_logit - m)) if n else 0.0
        total += math.log1p(ng / pos)  # -log(pos / (pos + ng)), both scaled by e^{-m}
    return total / len(target)


def test_half_precision_is_computed_in_float32() -> None:
    logits, target, _ = cosine_case(1, excluded_fraction=0.0)
    got = debiased_contrastive_loss(logits.bfloat16(), target)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(naive_debiased(logits.bfloat16().double(), target, 0.1, DEFAULT_MIN_LOGIT), rel=1e-5)


def test_loss_falls_as_the_positive_rises() -> None:
    logits, target, t = cosine_case(4)
    base = float(debiased_contrastive_loss(logits, target, tau_plus=0.2, min_logit=-1 / t))
    up = logits.clone()
    up[torch.arange(len(target)), target] += 0.5
    assert float(debiased_contrastive_loss(up, target, tau_plus=0.2, min_logit=-1 / t)) <= base


# -- parameters, the contract and the pipeline ------------------------------------------------------
@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, math.inf, True, "0.1", None])
def test_bad_tau_plus_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^tau_plus: ") as caught:
        DebiasedContrastiveLoss(tau_plus=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "tau_plus"
    with pytest.raises(InvalidParameter, match="^tau_plus: "):
        debiased_contrastive_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), tau_plus=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "low", False])
def test_bad_min_logit_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^min_logit: ") as caught:
        DebiasedContrastiveLoss(min_logit=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "min_logit"


def test_bad_shapes_raise_shape_error() -> None:
    with pytest.raises(ShapeError, match="debiased"):
        debiased_contrastive_loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ShapeError, match="debiased"):
        debiased_contrastive_loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


def test_contract() -> None:
    check_registered("objectives", "debiased")
    check_objective(DebiasedContrastiveLoss(tau_plus=0.0, two_way=False))
    check_objective(DebiasedContrastiveLoss(tau_plus=0.5, min_logit=-2.0, same_view_negatives=True))


def test_mi_bound_only_without_debiasing() -> None:
    objective = DebiasedContrastiveLoss()
    assert objective.two_way is True and objective.tau_plus == 0.1 and objective.same_view_negatives is False
    assert objective.min_logit == pytest.approx(-1 / 0.07)
    assert objective.mi_lower_bound(torch.tensor(0.3), 7) is None
    bound = DebiasedContrastiveLoss(tau_plus=0.0).mi_lower_bound(torch.tensor(0.3), 7)
    assert bound is not None and float(bound) == pytest.approx(math.log(8) - 0.3)
    assert "tau_plus=0.1" in repr(objective)


@pytest.mark.parametrize("table", [{"name": "debiased"}, {"name": "debiased", "tau_plus": 0.0, "min_logit": -5.0,
                                                          "same_view_negatives": True}])
def test_pipeline_runs(table: dict) -> None:
    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}, critic={"name": "cosine", "temperature": 0.2},
                    objective=table, dataset_size=8)
    out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    assert torch.isfinite(out.loss) and "loss/v1-v2" in out.metrics
    assert ("mi_lower_bound/v1-v2" in out.metrics) == (table.get("tau_plus", 0.1) == 0.0)
    out.loss.backward()
