"""Cosine critic: float64 references in both candidate layouts, learned and clamped temperature, defaults,
shared heads, contract, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.factories import build_component
from contrastkit.registry import get_registry
from contrastkit.testing import CONTEXT, check_critic, check_registered


def naive_cosine(raw_anchors: torch.Tensor, raw_candidates: torch.Tensor, tau: float) -> torch.Tensor:
    """cos(a_b, c_bk) / tau by explicit loops in float64, from un-normalised head outputs."""
    a = raw_anchors.double().tolist()
    per_anchor = raw_candidates.ndim == 3
    c = raw_candidates.double()
    rows = []
    for b, ab in enumerate(a):
        cands = (c[b] if per_anchor else c).tolist()
        row = []
        for ck in cands:
            dot = sum(x * y for x, y in zip(ab, ck))
            row.append(dot / (math.sqrt(sum(x * x for x in ab)) * math.sqrt(sum(y * y for y in ck))) / tau)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("head", ["none", "linear", "mlp"])
def test_score_matches_float64_reference(head: str, learn: bool) -> None:
    torch.manual_seed(0)
    critic = CosineCritic(feature_dims=(12, 12), head=head, embedding_dim=6, temperature=0.3, learn_temperature=learn).double()
    b, k = 5, 7
    f0, f1 = torch.randn(b, 12, dtype=torch.float64), torch.randn(b * k, 12, dtype=torch.float64)
    raw0, raw1 = critic.heads[0](f0), critic.heads[1](f1)
    z0, z1 = critic.embed(f0, view=0), critic.embed(f1, view=1)
    shared = critic.score(z0, z1[:k])  # [K, D]
    per_anchor = critic.score(z0, z1.view(b, k, -1))  # [B, K, D]
    assert shared.shape == (b, k) and per_anchor.shape == (b, k)
    tau = critic.temperature  # learned: exp of the float32 log(0.3) the parameter was created with
    assert tau == pytest.approx(0.3, rel=1e-6)
    torch.testing.assert_close(shared, naive_cosine(raw0, raw1[:k], tau), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(per_anchor, naive_cosine(raw0, raw1.view(b, k, -1), tau), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 4)])
def test_bad_candidate_shape(shape: tuple[int, ...]) -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    with pytest.raises(ShapeError, match="candidates must be"):
        critic.score(torch.randn(2, 4), torch.randn(*shape))


# -- learned temperature ------------------------------------------------------------------------
def test_learned_temperature_is_log_parametrised() -> None:
    critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.2, learn_temperature=True)
    assert isinstance(critic.log_temperature, nn.Parameter) and critic.log_temperature.ndim == 0
    assert [n for n, _ in critic.named_parameters()] == ["log_temperature"]
    assert float(critic.log_temperature.detach()) == pytest.approx(math.log(0.2))
    assert critic.temperature == pytest.approx(0.2) and isinstance(critic.temperature, float)
    fixed = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.2)
    assert list(fixed.parameters()) == [] and fixed.temperature == 0.2


def test_gradient_flows_into_log_temperature() -> None:
    torch.manual_seed(1)
    critic = CosineCritic(feature_dims=(8, 8), head="linear", embedding_dim=4, temperature=0.1, learn_temperature=True)
    z0, z1 = critic.embed(torch.randn(6, 8), 0), critic.embed(torch.randn(6, 8), 1)
    logits = critic.score(z0, z1)
    logits.sum().backward()
    # d(cos / exp(t)) / dt = -cos / tau = -logit
    assert critic.log_temperature.grad is not None
    assert float(critic.log_temperature.grad) == pytest.approx(-float(logits.detach().sum()), rel=1e-5)
    assert critic.heads[0].weight.grad is not None


@pytest.mark.parametrize(("log_value", "expected"), [(math.log(5.0), 1.0), (math.log(1e-4), 0.01), (math.log(0.3), 0.3)])
def test_temperature_is_clamped(log_value: float, expected: float) -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none", learn_temperature=True)
    assert critic.temperature_range == (0.01, 1.0)
    with torch.no_grad():
        critic.log_temperature.fill_(log_value)
    assert critic.temperature == pytest.approx(expected)
    z = F.normalize(torch.randn(3, 4), dim=1)
    torch.testing.assert_close(critic.score(z, z), z @ z.T / expected)


def test_custom_temperature_range() -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=0.1, learn_temperature=True, temperature_range=(0.05, 0.2))
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(0.01))
    assert critic.temperature == pytest.approx(0.05)


def _at_upper_bound() -> tuple[CosineCritic, torch.Tensor]:
    critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=0.5, learn_temperature=True)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(2.0))  # beyond the upper bound 1.0
    z = F.normalize(torch.ones(3, 4), dim=1)  # every cosine is 1
    return critic, z


def test_clamp_blocks_the_gradient_that_pushes_outward() -> None:
    critic, z = _at_upper_bound()
    critic.score(z, z).sum().backward()  # raising tau lowers this loss: descent would push tau further up
    assert float(critic.log_temperature.grad) == 0.0


def test_clamp_passes_the_gradient_that_points_back_inside() -> None:
    critic, z = _at_upper_bound()
    opt = torch.optim.SGD(critic.parameters(), lr=0.05)
    before = float(critic.log_temperature.detach())
    for _ in range(3):
        opt.zero_grad()
        (-critic.score(z, z).sum()).backward()  # lowering tau lowers this loss
        assert float(critic.log_temperature.grad) > 0
        opt.step()
    assert float(critic.log_temperature.detach()) < before
    assert 0.01 < critic.temperature < 1.0, "the temperature left the bound it had reached"


def test_clamp_below_the_range() -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none", learn_temperature=True)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(1e-3))
    z = F.normalize(torch.ones(3, 4), dim=1)
    (-critic.score(z, z).sum()).backward()  # wants a lower tau: outward, blocked
    assert float(critic.log_temperature.grad) == 0.0
    critic.log_temperature.grad = None
    critic.score(z, z).sum().backward()  # wants a higher tau: inward, passes
    assert float(critic.log_temperature.grad) < 0


def test_learned_temperature_repeated_scoring_in_one_graph() -> None:
    """Two-way objectives score several times before one backward: no in-place trouble."""
    critic = CosineCritic(feature_dims=(8, 8), learn_temperature=True, embedding_dim=4)
    z0, z1 = critic.embed(torch.randn(5, 8), 0), critic.embed(torch.randn(5, 8), 1)
    loss = F.cross_entropy(critic.score(z0, z1), torch.arange(5)) + F.cross_entropy(critic.score(z1, z0), torch.arange(5))
    loss.backward()
    assert torch.isfinite(critic.log_temperature.grad)


def test_learned_temperature_in_state_dict() -> None:
    critic = CosineCritic(feature_dims=(8, 8), learn_temperature=True, temperature=0.3)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(0.25))
    other = CosineCritic(feature_dims=(8, 8), learn_temperature=True, temperature=0.3)
    other.load_state_dict(critic.state_dict())
    assert other.temperature == pytest.approx(0.25)


def test_defaults_unchanged() -> None:
    critic = CosineCritic(feature_dims=(32, 24))
    assert (critic.head, critic.embedding_dim, critic.temperature, critic.learn_temperature) == ("linear", 128, 0.07, False)
    assert not critic.heads.is_shared


# -- shared heads, hidden widths ---------------------------------------------------------------
def test_shared_head_parameters_are_the_same_objects() -> None:
    critic = CosineCritic(feature_dims=(16, 16), head="mlp", hidden=[32], shared_head=True, embedding_dim=8)
    assert critic.heads[0] is critic.heads[1]
    per_view = CosineCritic(feature_dims=(16, 16), head="mlp", hidden=[32], embedding_dim=8)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 2 * n(critic) == n(per_view)
    x = torch.randn(4, 16)
    critic.eval()
    assert torch.equal(critic.embed(x, 0), critic.embed(x, 1))


def test_hidden_widths_reach_the_mlp() -> None:
    critic = CosineCritic(feature_dims=(16, 16), head="mlp", hidden=[40, 20], embedding_dim=8)
    widths = [m.out_features for m in critic.heads[1].modules() if isinstance(m, nn.Linear)]
    assert widths == [40, 20, 8]


# -- contract ----------------------------------------------------------------------------------
CONTRACT = [
    {},
    {"head": "none"},
    {"head": "mlp"},
    {"head": "mlp", "hidden": [16, 8], "embedding_dim": 4},
    {"learn_temperature": True},
    {"learn_temperature": True, "head": "mlp", "temperature": 0.5, "temperature_range": (0.1, 0.9)},
    {"shared_head": True, "head": "mlp"},
]


@pytest.mark.parametrize("params", CONTRACT, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
def test_contract(params: dict) -> None:
    torch.manual_seed(0)
    dims = (16, 16) if params.get("head") == "none" or params.get("shared_head") else CONTEXT["critics"]["feature_dims"]
    check_critic(CosineCritic(feature_dims=dims, **params), feature_dims=dims)


def test_registered_contract() -> None:
    torch.manual_seed(0)
    check_registered("critics", "cosine")


# -- bad parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"head": "deep"}, "head"),
        ({"head": "none"}, "head"),  # feature_dims (32, 24) differ
        ({"head": "mlp", "hidden": []}, "hidden"),
        ({"head": "mlp", "hidden": [0]}, "hidden"),
        ({"hidden": [64]}, "hidden"),  # head is "linear"
        ({"shared_head": True}, "shared_head"),  # feature_dims (32, 24) differ
        ({"temperature_range": (0.0, 1.0)}, "temperature_range"),
        ({"temperature_range": (0.5, 0.1)}, "temperature_range"),
        ({"temperature_range": (0.1,)}, "temperature_range"),
        ({"temperature_range": (0.01, float("inf"))}, "temperature_range"),
        ({"learn_temperature": True, "temperature": 2.0}, "temperature"),
        ({"learn_temperature": True, "temperature": 0.05, "temperature_range": (0.1, 0.5)}, "temperature"),
    ],
)
def test_bad_parameters(params: dict, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        CosineCritic(feature_dims=(32, 24), **params)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")


def test_errors_through_a_recipe_name_the_key() -> None:
    def build(**params):
        return build_component(get_registry(), "critics", {"name": "cosine", **params}, table="critic", injected={"feature_dims": (32, 24)})

    with pytest.raises(ConfigError, match=r"^critic\.shared_head: a shared head needs"):
        build(shared_head=True)
    with pytest.raises(ConfigError, match=r"^critic\.hidden: only used with head = 'mlp'"):
        build(hidden=[64])
    with pytest.raises(ConfigError, match=r"^critic\.temperature: must lie in temperature_range \[0\.01, 1\]"):
        build(learn_temperature=True, temperature=3.0)
    with pytest.raises(ConfigError, match=r"^critic\.temperature_range: expected a list of 2 items"):
        build(temperature_range=[0.1])
    critic = build(head="mlp", hidden=[48, 24], learn_temperature=True, temperature_range=[0.02, 0.5])
    assert critic.temperature_range == (0.02, 0.5) and critic.heads.hidden == [48, 24]
