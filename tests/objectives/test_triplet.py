"""Margin triplet against a naive float64 reference for each mining rule, gradcheck, -inf columns, contract."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.errors import InvalidParameter
from contrastkit.objectives.triplet import MarginTriplet, margin_triplet
from contrastkit.testing import check_objective

NEG_INF = float("-inf")
MINING = ["all", "hardest", "semi-hard"]


def random_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Cosine-critic logits ``cos / tau`` [B, K+1] (float64), targets, tau and a margin in logit units."""
    gen = torch.Generator().manual_seed(seed)
    b = int(torch.randint(1, 33, (1,), generator=gen))
    k = int(torch.randint(1, 40, (1,), generator=gen))
    d = int(torch.randint(2, 16, (1,), generator=gen))
    tau = float(torch.empty(1, dtype=torch.float64).uniform_(0.05, 1.0, generator=gen))
    cosine_margin = float(torch.empty(1, dtype=torch.float64).uniform_(0.05, 1.0, generator=gen))
    anchors = torch.nn.functional.normalize(torch.randn(b, d, generator=gen, dtype=torch.float64), dim=-1)
    candidates = torch.nn.functional.normalize(torch.randn(b, k + 1, d, generator=gen, dtype=torch.float64), dim=-1)
    logits = torch.einsum("bd,bkd->bk", anchors, candidates) / tau
    target = torch.randint(0, k + 1, (b,), generator=gen)
    excluded = torch.rand(b, k + 1, generator=gen) < 0.3
    if b > 1:
        excluded[-1] = True  # one anchor keeps no negative at all
    excluded[torch.arange(b), target] = False
    return logits.masked_fill(excluded, NEG_INF), target, tau, cosine_margin / tau


def naive_triplet(logits: torch.Tensor, target: torch.Tensor, margin: float, mining: str) -> float:
    """max(0, m - s+ + s-) per anchor, negatives chosen by explicit loops, in float64; mean over anchors."""
    rows = logits.double().tolist()
    total = 0.0
    for b, row in enumerate(rows):
        t = int(target[b])
        positive = row[t]
        negatives = [s for j, s in enumerate(row) if j != t and s != NEG_INF]
        if not negatives:
            continue  # contributes 0, still counts as an anchor
        if mining == "all":
            total += sum(max(0.0, margin - positive + s) for s in negatives) / len(negatives)
            continue
        hardest = max(negatives)
        chosen = hardest
        if mining == "semi-hard":
            window = [s for s in negatives if positive - margin < s < positive]
            if window:
                chosen = max(window)
        total += max(0.0, margin - positive + chosen)
    return total / len(rows)


@pytest.mark.parametrize("mining", MINING)
@pytest.mark.parametrize("seed", range(8))
def test_matches_float64_reference(seed: int, mining: str) -> None:
    logits, target, _, margin = random_case(seed)
    expected = naive_triplet(logits, target, margin, mining)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        got = float(margin_triplet(logits.to(dtype), target, margin=margin, mining=mining))
        assert got == pytest.approx(expected, rel=tol, abs=tol)
        module = MarginTriplet(margin=margin, mining=mining)
        assert float(module(logits.to(dtype), target)) == pytest.approx(expected, rel=tol, abs=tol)


def test_reference_cases_exercise_every_branch() -> None:
    """The random cases above include active and inactive hinges, and semi-hard anchors with and without a window."""
    with_window = without_window = active = inactive = 0
    for seed in range(8):
        logits, target, _, margin = random_case(seed)
        for row, t in zip(logits.tolist(), target.tolist()):
            negatives = [s for j, s in enumerate(row) if j != t and s != NEG_INF]
            if not negatives:
                continue
            in_window = any(row[t] - margin < s < row[t] for s in negatives)
            with_window += in_window
            without_window += not in_window
            active += any(margin - row[t] + s > 0 for s in negatives)
            inactive += any(margin - row[t] + s < 0 for s in negatives)
    assert min(with_window, without_window, active, inactive) > 0


def kink_free_logits(seed: int, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 logits at least 1e-2 away from every hinge kink, tie and semi-hard window edge."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.tensor([0, 3, 1, 5, 2])
    for _ in range(10_000):
        logits = torch.randn(5, 6, dtype=torch.float64, generator=gen)
        positive = logits.gather(1, target[:, None])
        mask = torch.ones_like(logits, dtype=torch.bool)
        mask[torch.arange(5), target] = False
        negatives = logits[mask].view(5, 5)
        gaps = torch.cat([
            (margin - positive + negatives).abs().flatten(),  # hinge and window's lower edge
            (negatives - positive).abs().flatten(),  # window's upper edge
            (negatives[:, :, None] - negatives[:, None, :]).abs()[:, ~torch.eye(5, dtype=torch.bool)].flatten(),
        ])
        if float(gaps.min()) > 1e-2:
            return logits, target
    raise AssertionError("no kink-free sample found")


@pytest.mark.parametrize("mining", MINING)
def test_gradcheck_float64_away_from_kinks(mining: str) -> None:
    logits, target = kink_free_logits(0, margin=0.8)
    excluded = torch.zeros_like(logits, dtype=torch.bool)
    excluded[0, 4] = excluded[1, 0] = True
    excluded[2, [0, 2, 3, 4, 5]] = True  # anchor 2: every negative excluded
    leaf = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: margin_triplet(x.masked_fill(excluded, NEG_INF), target, margin=0.8, mining=mining), (leaf,)
    )
    loss = margin_triplet(leaf.masked_fill(excluded, NEG_INF), target, margin=0.8, mining=mining)
    loss.backward()
    assert leaf.grad is not None and bool((leaf.grad[excluded] == 0).all())


def test_no_nan_with_inf_in_a_leaf() -> None:
    logits = torch.tensor([[1.0, NEG_INF, 0.5], [NEG_INF, 0.3, NEG_INF]], requires_grad=True)
    for mining in MINING:
        logits.grad = None
        loss = margin_triplet(logits, torch.tensor([0, 1]), margin=1.0, mining=mining)
        loss.backward()
        assert float(loss.detach()) == pytest.approx(0.5 / 2)  # anchor 1 has no negative: 0
        assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())
        assert float(logits.grad[0, 1]) == 0.0 and float(logits.grad[1, 0]) == 0.0


def test_hardest_picks_the_largest_negative() -> None:
    logits = torch.tensor([[2.0, 1.2, 1.9, -0.5, 1.7]], requires_grad=True)
    loss = margin_triplet(logits, torch.tensor([0]), margin=1.0, mining="hardest")
    assert float(loss.detach()) == pytest.approx(1.0 - 2.0 + 1.9)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad.tolist() == [[-1.0, 0.0, 1.0, 0.0, 0.0]]  # only the positive and column 2


def test_semi_hard_picks_the_hardest_negative_inside_the_window() -> None:
    # s+ = 1, m = 0.5: window (0.5, 1). 1.4 is harder than the positive, 0.9 and 0.6 are semi-hard.
    logits = torch.tensor([[1.0, 1.4, 0.6, 0.9, 0.1]], requires_grad=True)
    loss = margin_triplet(logits, torch.tensor([0]), margin=0.5, mining="semi-hard")
    assert float(loss.detach()) == pytest.approx(0.5 - 1.0 + 0.9)
    loss.backward()
    assert logits.grad is not None and logits.grad.tolist() == [[-1.0, 0.0, 0.0, 1.0, 0.0]]


def test_semi_hard_falls_back_to_the_hardest_negative() -> None:
    # Nothing in (0.5, 1): the hardest negative (1.4) is used.
    logits = torch.tensor([[1.0, 1.4, 0.2, 1.2]])
    target = torch.tensor([0])
    assert float(margin_triplet(logits, target, margin=0.5, mining="semi-hard")) == pytest.approx(0.5 - 1.0 + 1.4)
    # Only easy negatives: the fallback gives 0.
    easy = torch.tensor([[1.0, 0.2, -0.3]])
    assert float(margin_triplet(easy, target, margin=0.5, mining="semi-hard")) == 0.0


def test_semi_hard_window_moves_with_the_positive() -> None:
    """Documented: raising s+ can bring a harder negative into the window, so semi-hard is not monotone in s+."""
    target = torch.tensor([0])
    before = margin_triplet(torch.tensor([[0.0, -0.9, 1.9]]), target, margin=1.0, mining="semi-hard")
    after = margin_triplet(torch.tensor([[2.0, -0.9, 1.9]]), target, margin=1.0, mining="semi-hard")
    assert float(before) == pytest.approx(0.1) and float(after) == pytest.approx(0.9)


def test_all_averages_over_every_negative_including_zero_terms() -> None:
    logits = torch.tensor([[1.0, 0.8, -3.0, -2.0, NEG_INF]])  # one active pair (0.3) of three negatives
    assert float(margin_triplet(logits, torch.tensor([0]), margin=0.5)) == pytest.approx(0.3 / 3)


def test_excluded_column_is_the_same_as_a_missing_column() -> None:
    logits = torch.tensor([[0.4, 0.3, 2.0, 0.1, -0.2]])
    with_inf = logits.clone()
    with_inf[0, 2] = NEG_INF
    removed = logits[:, [0, 1, 3, 4]]
    for mining in MINING:
        a = margin_triplet(with_inf, torch.tensor([0]), margin=0.5, mining=mining)
        b = margin_triplet(removed, torch.tensor([0]), margin=0.5, mining=mining)
        assert float(a) == pytest.approx(float(b)) and float(a) > 0


@pytest.mark.parametrize("mining", MINING)
def test_temperature_only_scales_a_cosine_margin(mining: str) -> None:
    """With logits cos / tau and margin m_cos / tau, the loss is the cosine-space loss divided by tau."""
    logits, target, tau, margin = random_case(11)
    cosines = logits * tau
    cosine_loss = margin_triplet(cosines, target, margin=margin * tau, mining=mining)
    assert float(margin_triplet(logits, target, margin=margin, mining=mining)) == pytest.approx(
        float(cosine_loss) / tau, rel=1e-9
    )


@pytest.mark.parametrize("mining", ["all", "hardest"])
def test_loss_never_rises_with_the_positive(mining: str) -> None:
    for seed in range(4):
        logits, target, _, margin = random_case(seed)
        base = float(margin_triplet(logits, target, margin=margin, mining=mining))
        up = logits.clone()
        up[torch.arange(len(target)), target] += 0.5
        assert float(margin_triplet(up, target, margin=margin, mining=mining)) <= base
    strict = torch.tensor([[1.0, 0.9, 0.2]])
    raised = torch.tensor([[1.2, 0.9, 0.2]])
    assert float(margin_triplet(raised, torch.tensor([0]), mining=mining)) < float(
        margin_triplet(strict, torch.tensor([0]), mining=mining)
    )


@pytest.mark.parametrize("mining", ["all", "hardest"])
def test_contract(mining: str) -> None:
    check_objective(MarginTriplet())
    check_objective(MarginTriplet(two_way=False, margin=2.0, mining=mining))


def test_attributes_and_no_mi_bound() -> None:
    objective = MarginTriplet()
    assert objective.two_way is True and objective.margin == 1.0 and objective.mining == "all"
    assert MarginTriplet(two_way=False).two_way is False
    assert objective.mi_lower_bound(torch.tensor(0.3), 7) is None
    assert "mining='all'" in repr(objective) and "margin=1.0" in repr(objective)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "1.0", None])
def test_bad_margin_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^margin: ") as caught:
        MarginTriplet(margin=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "margin"
    with pytest.raises(InvalidParameter, match="^margin: "):
        margin_triplet(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), margin=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["semihard", "hard", "random", "", None])
def test_bad_mining_raises_invalid_parameter(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^mining: ") as caught:
        MarginTriplet(mining=bad)  # type: ignore[arg-type]
    assert caught.value.parameter == "mining"
    with pytest.raises(InvalidParameter, match="^mining: "):
        margin_triplet(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), mining=bad)  # type: ignore[arg-type]


def test_pipeline_runs_with_triplet() -> None:
    from contrastkit import Pipeline

    torch.manual_seed(0)
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2},
                    critic={"name": "cosine", "temperature": 0.3}, objective=MarginTriplet(mining="hardest"))
    out = pipe({"image": torch.rand(6, 3, 16, 16), "index": torch.arange(6)})
    assert math.isfinite(float(out.loss.detach())) and "loss/v1-v2" in out.metrics
    assert not any(key.startswith("mi_lower_bound") for key in out.metrics)
    out.loss.backward()
