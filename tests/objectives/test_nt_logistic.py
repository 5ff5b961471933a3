"""NT-Logistic against a naive float64 reference, its gradients (SimCLR Table 2), -inf columns, contract."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.errors import InvalidParameter
from contrastkit.objectives.nt_logistic import NTLogistic, nt_logistic
from contrastkit.testing import check_objective
from tests.objectives._cases import gradcheck_case

NEG_INF = float("-inf")


def random_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Cosine-critic logits ``cos / tau`` [B, K+1] (float64) with random sizes, targets and -inf columns."""
    gen = torch.Generator().manual_seed(seed)
    b = int(torch.randint(1, 33, (1,), generator=gen))
    k = int(torch.randint(1, 40, (1,), generator=gen))
    d = int(torch.randint(2, 16, (1,), generator=gen))
    tau = float(torch.empty(1, dtype=torch.float64).uniform_(0.05, 1.0, generator=gen))
    anchors = torch.nn.functional.normalize(torch.randn(b, d, generator=gen, dtype=torch.float64), dim=-1)
    candidates = torch.nn.functional.normalize(torch.randn(b, k + 1, d, generator=gen, dtype=torch.float64), dim=-1)
    logits = torch.einsum("bd,bkd->bk", anchors, candidates) / tau
    target = torch.randint(0, k + 1, (b,), generator=gen)
    excluded = torch.rand(b, k + 1, generator=gen) < 0.3
    if b > 1:
        excluded[-1] = True  # one anchor keeps no negative at all
    excluded[torch.arange(b), target] = False
    return logits.masked_fill(excluded, NEG_INF), target, tau


def naive_nt_logistic(logits: torch.Tensor, target: torch.Tensor, weighting: str) -> float:
    """-log sigma(s+) - sum_k w_k log sigma(-s-_k), one anchor and one negative at a time, in float64."""

    def sigmoid(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))

    rows = logits.double().tolist()
    total = 0.0
    for b, row in enumerate(rows):
        t = int(target[b])
        loss = -math.log(sigmoid(row[t]))
        negatives = [s for j, s in enumerate(row) if j != t and s != NEG_INF]
        terms = [-math.log(sigmoid(-s)) for s in negatives]
        if terms:
            loss += sum(terms) / (len(terms) if weighting == "mean" else 1)
        total += loss
    return total / len(rows)


@pytest.mark.parametrize("weighting", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(8))
def test_matches_float64_reference(seed: int, weighting: str) -> None:
    logits, target, _ = random_case(seed)
    expected = naive_nt_logistic(logits, target, weighting)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        got = float(nt_logistic(logits.to(dtype), target, negative_weighting=weighting))
        assert got == pytest.approx(expected, rel=tol, abs=tol)
        module = NTLogistic(negative_weighting=weighting)
        assert float(module(logits.to(dtype), target)) == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize("weighting", ["mean", "sum"])
def test_gradients_are_simclr_table_2(weighting: str) -> None:
    """d/ds+ = -sigma(-s+) / B and d/ds-_k = w_k sigma(s-_k) / B; excluded columns get exactly 0."""
    logits, target, _ = random_case(3)
    leaf = logits.masked_fill(logits == NEG_INF, 0.0).requires_grad_(True)
    excluded = logits == NEG_INF
    nt_logistic(leaf.masked_fill(excluded, NEG_INF), target, negative_weighting=weighting).backward()
    b = logits.shape[0]
    expected = torch.zeros_like(logits)
    for i in range(b):
        t = int(target[i])
        negatives = [j for j in range(logits.shape[1]) if j != t and not excluded[i, j]]
        w = 1.0 / len(negatives) if (weighting == "mean" and negatives) else 1.0
        expected[i, t] = -torch.sigmoid(-logits[i, t]) / b
        for j in negatives:
            expected[i, j] = w * torch.sigmoid(logits[i, j]) / b
    assert leaf.grad is not None
    assert torch.allclose(leaf.grad, expected, atol=1e-12)
    assert bool((leaf.grad[excluded] == 0).all())


@pytest.mark.parametrize("weighting", ["mean", "sum"])
def test_gradcheck_float64_with_excluded_columns(weighting: str) -> None:
    logits, target, excluded = gradcheck_case()  # anchor 2 has every negative excluded
    assert torch.autograd.gradcheck(
        lambda x: nt_logistic(x.masked_fill(excluded, NEG_INF), target, negative_weighting=weighting), (logits,)
    )


def test_no_nan_with_inf_in_a_leaf() -> None:
    """-inf straight in a leaf tensor: finite loss, and a zero (not NaN) gradient at those entries."""
    logits = torch.tensor([[1.0, NEG_INF, -0.5], [NEG_INF, 0.3, NEG_INF]], requires_grad=True)
    for weighting in ("mean", "sum"):
        logits.grad = None
        loss = nt_logistic(logits, torch.tensor([0, 1]), negative_weighting=weighting)
        loss.backward()
        assert math.isfinite(float(loss.detach()))
        assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())
        assert float(logits.grad[0, 1]) == 0.0 and float(logits.grad[1, 0]) == 0.0


def test_excluded_column_is_the_same_as_a_missing_column() -> None:
    logits = torch.tensor([[0.4, -1.2, 2.0, 0.7]])
    with_inf = logits.clone()
    with_inf[0, 2] = NEG_INF
    removed = logits[:, [0, 1, 3]]
    for weighting in ("mean", "sum"):
        a = nt_logistic(with_inf, torch.tensor([0]), negative_weighting=weighting)
        b = nt_logistic(removed, torch.tensor([0]), negative_weighting=weighting)
        assert float(a) == pytest.approx(float(b), rel=1e-6)


def test_mean_and_sum_weighting() -> None:
    """Same positive term; the sum of the negative terms is K times their mean; equal for K = 1."""
    logits = torch.tensor([[1.0, 0.5, -0.3, 0.2, 1.1]])
    target = torch.tensor([0])
    positive = float(torch.nn.functional.softplus(torch.tensor(-1.0)))
    mean = float(nt_logistic(logits, target, negative_weighting="mean"))
    total = float(nt_logistic(logits, target, negative_weighting="sum"))
    assert total - positive == pytest.approx(4 * (mean - positive), rel=1e-6)
    pair = torch.tensor([[1.0, 0.5]])
    assert float(nt_logistic(pair, target, negative_weighting="mean")) == pytest.approx(
        float(nt_logistic(pair, target, negative_weighting="sum"))
    )


def test_uniform_and_confident_extremes() -> None:
    # All logits 0: every term is log 2.
    assert float(nt_logistic(torch.zeros(3, 8), torch.zeros(3, dtype=torch.long))) == pytest.approx(2 * math.log(2))
    logits = torch.full((4, 6), -30.0)
    logits[:, 2] = 30.0
    assert float(nt_logistic(logits, torch.full((4,), 2))) < 1e-10


def test_loss_falls_as_positive_rises_and_rises_with_a_negative() -> None:
    logits, target, _ = random_case(5)
    base = float(nt_logistic(logits, target))
    up = logits.clone()
    up[torch.arange(len(target)), target] += 1.0
    assert float(nt_logistic(up, target)) < base
    worse = logits.clone()
    # A negative (possibly a formerly excluded column) scoring above every other logit.
    worse[0, (int(target[0]) + 1) % logits.shape[1]] = float(logits[logits.isfinite()].max()) + 5.0
    assert float(nt_logistic(worse, target)) > base


@pytest.mark.parametrize("weighting", ["mean", "sum"])
def test_contract(weighting: str) -> None:
    check_objective(NTLogistic())
    check_objective(NTLogistic(two_way=False, negative_weighting=weighting))


def test_attributes_and_no_mi_bound() -> None:
    objective = NTLogistic()
    assert objective.two_way is True and objective.negative_weighting == "mean"
    assert NTLogistic(two_way=False).two_way is False
    assert objective.mi_lower_bound(torch.tensor(0.3), 7) is None
    assert "negative_weighting='mean'" in repr(objective)


@pytest.mark.parametrize("bad", ["hard", "uniform", "", None, 1])
def test_bad_weighting_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^negative_weighting: ") as caught:
        NTLogistic(negative_weighting=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "negative_weighting"
    with pytest.raises(InvalidParameter, match="^negative_weighting: "):
        nt_logistic(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), negative_weighting=bad)  # type: ignore[arg-type]


def test_pipeline_runs_with_nt_logistic() -> None:
    from contrastkit import Pipeline

    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2},
                    critic={"name": "cosine", "temperature": 0.3}, objective=NTLogistic())
    out = pipe({"image": torch.rand(6, 3, 16, 16), "index": torch.arange(6)})
    assert math.isfinite(float(out.loss.detach())) and "loss/v1-v2" in out.metrics
    assert not any(key.startswith("mi_lower_bound") for key in out.metrics)
    out.loss.backward()
