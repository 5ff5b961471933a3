"""``nce``: CMC's NCE loss against a float64 reference, gradcheck, and the normalisation constant Z."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Any

import pytest
import torch

from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.factories import build_component
from contrastkit.negatives.memory_bank import MemoryBankNegatives
from contrastkit.objectives.nce import NCEObjective, estimate_log_z, nce_loss
from contrastkit.pipeline import Pipeline
from contrastkit.registry import Registry
from contrastkit.testing import check_objective, check_registered


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The built-in plugins only (no entry points): memory-bank and nce are registered there."""
    return Registry(entry_points=False)


def naive_nce(logits: torch.Tensor, target: torch.Tensor, z: float, n: int) -> float:
    """CMC's NCECriterion written out per anchor in float64: P = exp(s)/Z, P_n = 1/N, K noise samples."""
    total = 0.0
    rows = logits.double().tolist()
    for row, t in zip(rows, target.tolist()):
        negatives = [s for j, s in enumerate(row) if j != t and s != -math.inf]
        k = len(negatives)
        p_pos = math.exp(row[t]) / z
        loss = -math.log(p_pos / (p_pos + k / n))
        for s in negatives:
            p_neg = math.exp(s) / z
            loss -= math.log(1 - p_neg / (p_neg + k / n))
        total += loss
    return total / len(rows)


# -- the loss --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_nce_loss_matches_the_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    b = int(torch.randint(1, 12, (1,), generator=gen))
    k = int(torch.randint(1, 20, (1,), generator=gen))
    n = int(torch.randint(k + 1, 5000, (1,), generator=gen))
    tau = float(torch.empty(1).uniform_(0.07, 1.0, generator=gen))
    logits = (torch.rand(b, k + 1, generator=gen) * 2 - 1) / tau  # cos / tau
    target = torch.randint(0, k + 1, (b,), generator=gen)
    z = float(torch.empty(1).uniform_(0.1, 3.0, generator=gen)) * n
    got = nce_loss(logits.double(), target, log_z=math.log(z), dataset_size=n)
    assert float(got) == pytest.approx(naive_nce(logits, target, z, n), rel=1e-10)
    got32 = nce_loss(logits, target, log_z=torch.tensor(math.log(z)), dataset_size=n)
    assert float(got32) == pytest.approx(naive_nce(logits, target, z, n), rel=1e-5)


def test_excluded_columns_are_left_out() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, dtype=torch.float64, generator=gen)
    target = torch.tensor([0, 2, 5])
    masked = logits.clone()
    masked[0, 3] = masked[1, 0] = masked[1, 4] = -math.inf
    expected = naive_nce(masked, target, 70.0, 100)
    assert float(nce_loss(masked, target, log_z=math.log(70.0), dataset_size=100)) == pytest.approx(expected, rel=1e-10)
    # row 0 alone equals its four remaining negatives in a [1, 5] problem
    row = torch.cat([logits[0, :3], logits[0, 4:]])[None]
    alone = nce_loss(row, torch.tensor([0]), log_z=math.log(70.0), dataset_size=100)
    assert float(alone) == pytest.approx(naive_nce(masked[:1], target[:1], 70.0, 100), rel=1e-10)


def test_gradcheck_float64() -> None:
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 1, 6, 2])
    assert torch.autograd.gradcheck(lambda x: nce_loss(x, target, log_z=torch.tensor(2.5), dataset_size=40), (logits,))
    assert torch.autograd.gradgradcheck(lambda x: nce_loss(x, target, log_z=2.5, dataset_size=40), (logits,))


def test_gradient_signs_and_stability_at_low_temperature() -> None:
    # cos / tau with tau = 0.01: exp(100) overflows float32, the stable form does not.
    logits = (torch.tensor([[0.9, -0.2, 0.95, 0.1]]) / 0.01).requires_grad_()
    loss = nce_loss(logits, torch.tensor([0]), log_z=torch.tensor(3.0), dataset_size=10)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert float(logits.grad[0, 0]) <= 0 and bool((logits.grad[0, 1:] >= 0).all())
    # CMC's formula in 60-digit decimals (float64 underflows 1 - P/(P + K/N) to 0 here)
    with localcontext() as ctx:
        ctx.prec = 60
        scores = [Decimal(x) for x in logits.detach().double()[0].tolist()]
        z, noise = Decimal(3).exp(), Decimal(3) / Decimal(10)
        p = [s.exp() / z for s in scores]
        expected = -(p[0] / (p[0] + noise)).ln() - sum((1 - q / (q + noise)).ln() for q in p[1:])
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)


def test_half_precision_logits_are_summed_in_float32() -> None:
    logits = torch.randn(16, 33)
    target = torch.zeros(16, dtype=torch.long)
    low = nce_loss(logits.bfloat16(), target, log_z=5.0, dataset_size=200)
    assert low.dtype == torch.float32
    full = nce_loss(logits.bfloat16().float(), target, log_z=5.0, dataset_size=200)
    assert float(low) == pytest.approx(float(full), rel=1e-6)


def test_shape_errors() -> None:
    with pytest.raises(ShapeError, match="K >= 1"):
        nce_loss(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), log_z=0.0, dataset_size=5)
    with pytest.raises(ShapeError):
        NCEObjective(dataset_size=5)(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))


# -- Z ---------------------------------------------------------------------------------------------
def test_estimate_log_z_is_n_times_the_mean_exp() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, dtype=torch.float64, generator=gen) * 3
    target = torch.tensor([0, 1, 5, 0])
    every = 100 * sum(math.exp(s) for row in logits.tolist() for s in row) / 24
    negatives = 100 * sum(
        math.exp(s) for i, row in enumerate(logits.tolist()) for j, s in enumerate(row) if j != target[i]
    ) / 20
    assert float(estimate_log_z(logits, target, 100).exp()) == pytest.approx(every, rel=1e-12)
    assert float(estimate_log_z(logits, target, 100, negatives_only=True).exp()) == pytest.approx(negatives, rel=1e-12)
    assert not estimate_log_z(logits.requires_grad_(), target, 100).requires_grad


def test_fixed_z_comes_from_the_first_batch_and_stays() -> None:
    gen = torch.Generator().manual_seed(1)
    n = 500
    objective = NCEObjective(dataset_size=n)
    first = torch.randn(8, 17, generator=gen)
    target = torch.zeros(8, dtype=torch.long)
    loss = objective(first, target)
    z = n * float(first.double().exp().mean())  # CMC: (out.mean() * outputSize), every column
    assert float(objective.z) == pytest.approx(z, rel=1e-6)
    assert float(loss) == pytest.approx(naive_nce(first, target, z, n), rel=1e-5)
    second = torch.randn(8, 17, generator=gen) * 4
    loss2 = objective(second, target)
    assert float(objective.z) == pytest.approx(z, rel=1e-6) and int(objective.z_updates) == 2
    assert float(loss2) == pytest.approx(naive_nce(second, target, z, n), rel=1e-5)


def test_running_z_is_an_ema_of_the_negatives_estimate() -> None:
    gen = torch.Generator().manual_seed(2)
    n, mu = 300, 0.8
    objective = NCEObjective(dataset_size=n, z_mode="running", z_momentum=mu)
    target = torch.tensor([0, 3, 1, 2])
    z = None
    for step in range(5):
        logits = torch.randn(4, 6, dtype=torch.float64, generator=gen) * (1 + step)
        negatives = [math.exp(s) for i, row in enumerate(logits.tolist()) for j, s in enumerate(row) if j != target[i]]
        batch = n * sum(negatives) / len(negatives)
        z = batch if z is None else mu * z + (1 - mu) * batch
        loss = objective(logits, target)
        assert float(objective.z) == pytest.approx(z, rel=1e-10)
        assert float(loss) == pytest.approx(naive_nce(logits, target, z, n), rel=1e-10)


def test_running_z_follows_a_shift_of_every_score_where_fixed_z_blows_up() -> None:
    # A common shift of every score (what happens when features cluster as training goes on) does
    # not change the ideal NCE problem; a tracked Z absorbs it, CMC's fixed Z does not.
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(32, 65, generator=gen)
    target = torch.zeros(32, dtype=torch.long)
    fixed = NCEObjective(dataset_size=64)
    running = NCEObjective(dataset_size=64, z_mode="running", z_momentum=0.5)
    start_fixed, start_running = float(fixed(logits, target)), float(running(logits, target))
    for _ in range(40):
        late_fixed, late_running = float(fixed(logits + 10, target)), float(running(logits + 10, target))
    assert late_running == pytest.approx(start_running, rel=1e-4)
    assert late_fixed > 50 * start_fixed


@pytest.mark.parametrize("z_mode", ["fixed", "running"])
def test_the_loss_does_not_depend_on_dataset_size(z_mode: str) -> None:
    # Z is estimated as N * mean(exp(s)), so N cancels from c = log(K * Z / N).
    gen = torch.Generator().manual_seed(4)
    batches = [torch.randn(6, 11, dtype=torch.float64, generator=gen) * (1 + i) for i in range(4)]
    target = torch.tensor([0, 1, 2, 3, 4, 5])
    objectives = [NCEObjective(dataset_size=n, z_mode=z_mode, z_momentum=0.7) for n in (None, 10, 10**6)]
    for logits in batches:
        losses = [float(o(logits, target)) for o in objectives]
        assert losses[1] == pytest.approx(losses[0], rel=1e-12) and losses[2] == pytest.approx(losses[0], rel=1e-12)
    assert float(objectives[2].log_z - objectives[0].log_z) == pytest.approx(math.log(10**6), rel=1e-12)


def test_eval_mode_uses_the_stored_z_and_changes_nothing() -> None:
    objective = NCEObjective(dataset_size=50, z_mode="running").eval()
    logits = torch.randn(4, 5)
    target = torch.zeros(4, dtype=torch.long)
    loss = objective(logits, target)  # before any training step: the batch's own estimate
    z = float(50 * logits.double().exp()[:, 1:].mean())
    assert float(loss) == pytest.approx(naive_nce(logits, target, z, 50), rel=1e-5)
    assert int(objective.z_updates) == 0 and float(objective.log_z) == 0.0
    objective.train()(logits, target)
    stored = objective.log_z.clone()
    objective.eval()(logits * 3, target)
    assert torch.equal(objective.log_z, stored) and int(objective.z_updates) == 1


def test_z_is_a_constant_for_the_gradient() -> None:
    logits = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)
    target = torch.arange(6)
    objective = NCEObjective(dataset_size=30, z_mode="running")
    objective(logits, target).backward()
    grad = logits.grad.clone()
    logits.grad = None
    nce_loss(logits, target, log_z=objective.log_z.clone(), dataset_size=30).backward()
    assert torch.allclose(grad, logits.grad, atol=1e-14)


def test_z_round_trips_through_the_state_dict() -> None:
    objective = NCEObjective(dataset_size=40)
    objective(torch.randn(4, 6), torch.zeros(4, dtype=torch.long))
    state = objective.state_dict()
    assert set(state) == {"log_z", "z_updates"}
    fresh = NCEObjective(dataset_size=40)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.log_z, objective.log_z) and int(fresh.z_updates) == 1


# -- contract, parameters, pipeline ------------------------------------------------------------------
@pytest.mark.parametrize("z_mode", ["fixed", "running"])
def test_contract(z_mode: str) -> None:
    check_objective(NCEObjective(z_mode=z_mode))
    check_objective(NCEObjective(z_mode=z_mode, dataset_size=64))


def test_registered_contract_with_defaults(registry: Registry) -> None:
    check_registered("objectives", "nce", registry=registry)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"dataset_size": 0}, "dataset_size"),
        ({"dataset_size": 10, "z_mode": "ema"}, "z_mode"),
        ({"dataset_size": 10, "z_momentum": 1.0}, "z_momentum"),
        ({"dataset_size": 10, "z_momentum": -0.5}, "z_momentum"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        NCEObjective(**kwargs)
    assert info.value.parameter == parameter


def test_recipe_errors_name_the_table_key(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"^objective\.dataset_size: must be >= 1 \(the number of training samples\)"):
        build_component(registry, "objectives", {"name": "nce", "dataset_size": 0}, table="objective")
    with pytest.raises(ConfigError, match=r"^objective\.dataset_size: expected an integer"):
        build_component(registry, "objectives", {"name": "nce", "dataset_size": 4.5}, table="objective")
    assert build_component(registry, "objectives", "nce", table="objective").dataset_size is None
    with pytest.raises(ConfigError, match=r"^objective\.z_mode: must be one of 'fixed', 'running'"):
        build_component(registry, "objectives", {"name": "nce", "dataset_size": 5, "z_mode": "ema"}, table="objective")
    built = build_component(registry, "objectives", {"name": "nce", "dataset_size": 5, "z_momentum": 0.9},
                            table="objective")
    assert (built.dataset_size, built.z_momentum, built.two_way) == (5, 0.9, True)


def test_pipeline_with_memory_bank_and_nce_is_cmcs_two_way_loss() -> None:
    torch.manual_seed(0)
    n = 24
    pipe = Pipeline(
        encoder={"name": "convnet", "width": 4, "depth": 2},
        critic={"name": "cosine", "embedding_dim": 8, "temperature": 0.07},
        negatives=MemoryBankNegatives(num_views=2, dataset_size=n, embedding_dim=8, num_negatives=10),
        objective=NCEObjective(dataset_size=n),
        dataset_size=n,
    )
    out = pipe({"image": torch.rand(6, 3, 16, 16), "index": torch.arange(6)})
    assert sorted(out.metrics) == ["loss", "loss/v1-v2", "negatives/v1-v2"]  # NCE reports no MI bound
    assert torch.isfinite(out.loss) and int(pipe.objective.z_updates) == 2
    assert {"objective.log_z", "objective.z_updates", "negatives.bank"} <= set(pipe.state_dict())
