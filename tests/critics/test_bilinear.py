"""Bilinear critic: float64 references in both candidate layouts, identity init (= cosine), no tensor
larger than [B, K, D], gradients into W, shared heads, contract, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import contrastkit
from contrastkit.critics.bilinear import BilinearCritic, bilinear_logits
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.factories import build_component
from contrastkit.registry import Registry
from contrastkit.testing import CONTEXT, check_critic, check_registered


def naive_bilinear(anchors: torch.Tensor, candidates: torch.Tensor, weight: torch.Tensor, tau: float) -> torch.Tensor:
    """sum_{d,e} a_bd W_de c_bke / tau by explicit loops in float64."""
    a, w = anchors.double().tolist(), weight.double().tolist()
    per_anchor = candidates.ndim == 3
    rows = []
    for b, ab in enumerate(a):
        cands = (candidates[b] if per_anchor else candidates).double().tolist()
        rows.append(
            [sum(ab[d] * w[d][e] * ck[e] for d in range(len(ab)) for e in range(len(ck))) / tau for ck in cands]
        )
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("head", ["none", "linear", "mlp"])
def test_score_matches_float64_reference(head: str, normalize: bool) -> None:
    torch.manual_seed(0)
    critic = BilinearCritic(feature_dims=(6, 6), head=head, embedding_dim=5, temperature=0.4, normalize=normalize).double()
    with torch.no_grad():
        critic.weight.copy_(torch.randn_like(critic.weight))  # a general, non-symmetric W
    b, k = 4, 6
    f0, f1 = torch.randn(b, 6, dtype=torch.float64), torch.randn(b * k, 6, dtype=torch.float64)
    z0, z1 = critic.embed(f0, view=0), critic.embed(f1, view=1)
    raw0, raw1 = critic.heads[0](f0), critic.heads[1](f1)
    if normalize:
        raw0, raw1 = raw0 / raw0.norm(dim=1, keepdim=True), raw1 / raw1.norm(dim=1, keepdim=True)
    else:
        assert not torch.allclose(z0.norm(dim=1), torch.ones(b, dtype=torch.float64))
    torch.testing.assert_close(z0, raw0, rtol=1e-12, atol=1e-12)
    shared = critic.score(z0, z1[:k])
    per_anchor = critic.score(z0, z1.view(b, k, -1))
    assert shared.shape == (b, k) and per_anchor.shape == (b, k)
    torch.testing.assert_close(shared, naive_bilinear(raw0, raw1[:k], critic.weight, 0.4), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(per_anchor, naive_bilinear(raw0, raw1.view(b, k, -1), critic.weight, 0.4), rtol=1e-10, atol=1e-10)


def test_weight_starts_as_identity_and_equals_cosine() -> None:
    """W = I and normalize: the same scores as the cosine critic built with the same seed."""
    torch.manual_seed(2)
    bilinear = BilinearCritic(feature_dims=(12, 10), head="mlp", embedding_dim=6, temperature=0.2)
    torch.manual_seed(2)
    cosine = CosineCritic(feature_dims=(12, 10), head="mlp", embedding_dim=6, temperature=0.2)
    assert torch.equal(bilinear.weight.detach(), torch.eye(6))
    f0, f1 = torch.randn(5, 12), torch.randn(5, 10)
    zb = [bilinear.embed(f0, 0), bilinear.embed(f1, 1)]
    zc = [cosine.embed(f0, 0), cosine.embed(f1, 1)]
    torch.testing.assert_close(bilinear.score(zb[0], zb[1]), cosine.score(zc[0], zc[1]))
    torch.testing.assert_close(bilinear.score(zb[0], zb[1].expand(5, 5, 6)), cosine.score(zc[0], zc[1].expand(5, 5, 6)))


def test_score_is_anchor_first() -> None:
    """score(z2, z1) uses W with the anchors on the left, i.e. the transpose of score(z1, z2) under W^T."""
    torch.manual_seed(3)
    critic = BilinearCritic(feature_dims=(4, 4), head="none", temperature=1.0)
    with torch.no_grad():
        critic.weight.copy_(torch.randn(4, 4))
    z1, z2 = critic.embed(torch.randn(3, 4), 0), critic.embed(torch.randn(3, 4), 1)
    torch.testing.assert_close(critic.score(z2, z1), bilinear_logits(z1, z2, critic.weight.T, 1.0).T)


def test_gradient_reaches_weight_and_heads() -> None:
    torch.manual_seed(4)
    critic = BilinearCritic(feature_dims=(8, 8), embedding_dim=4)
    z0, z1 = critic.embed(torch.randn(6, 8), 0), critic.embed(torch.randn(6, 8), 1)
    F.cross_entropy(critic.score(z0, z1), torch.arange(6)).backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0
    assert critic.heads[0].weight.grad is not None and critic.heads[1].weight.grad is not None


class _LargestOutput(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("per_anchor", [False, True])
def test_nothing_larger_than_the_candidates_is_built(per_anchor: bool) -> None:
    b, k, d = 6, 50, 16
    critic = BilinearCritic(feature_dims=(d, d), head="none")
    anchors = torch.randn(b, d)
    candidates = torch.randn(b, k, d) if per_anchor else torch.randn(k, d)
    with _LargestOutput() as mode:
        logits = critic.score(anchors, candidates)
    assert logits.shape == (b, k)
    assert mode.largest <= max(candidates.numel(), b * k, d * d), f"built a tensor of {mode.largest} elements"


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 4)])
def test_bad_candidate_shape(shape: tuple[int, ...]) -> None:
    critic = BilinearCritic(feature_dims=(4, 4), head="none")
    with pytest.raises(ShapeError, match="bilinear critic: candidates must be"):
        critic.score(torch.randn(2, 4), torch.randn(*shape))


def test_heads_options() -> None:
    critic = BilinearCritic(feature_dims=(16, 16), head="mlp", hidden=[24, 12], shared_head=True, embedding_dim=8)
    assert critic.heads[0] is critic.heads[1] and critic.heads.hidden == [24, 12]
    assert critic.weight.shape == (8, 8)
    none = BilinearCritic(feature_dims=(10, 10), head="none", embedding_dim=3)
    assert none.embedding_dim == 10 and none.weight.shape == (10, 10)


def test_defaults() -> None:
    critic = BilinearCritic(feature_dims=(32, 24))
    assert (critic.head, critic.embedding_dim, critic.temperature, critic.normalize) == ("linear", 128, 0.07, True)
    assert not critic.heads.is_shared


# -- contract ----------------------------------------------------------------------------------
CONTRACT = [
    {},
    {"normalize": False},
    {"head": "mlp", "hidden": [16, 8], "embedding_dim": 4},
    {"head": "none"},
    {"shared_head": True, "head": "mlp"},
]


@pytest.mark.parametrize("params", CONTRACT, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
def test_contract(params: dict) -> None:
    torch.manual_seed(0)
    dims = (16, 16) if params.get("head") == "none" or params.get("shared_head") else CONTEXT["critics"]["feature_dims"]
    check_critic(BilinearCritic(feature_dims=dims, **params), feature_dims=dims)


class _BilinearPlugin:
    @staticmethod
    @contrastkit.hookimpl
    def register_critics(register) -> None:
        register("bilinear", BilinearCritic)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The built-ins, plus ``bilinear`` when contrastkit does not register it (yet)."""
    registry = Registry(entry_points=False)
    if "bilinear" not in registry.names("critics"):
        registry.add_plugin(_BilinearPlugin(), name="test-bilinear")
    return registry


def test_registered_contract(registry: Registry) -> None:
    torch.manual_seed(0)
    check_registered("critics", "bilinear", registry=registry)


# -- bad parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"head": "deep"}, "head"),
        ({"head": "none"}, "head"),  # feature_dims (32, 24) differ
        ({"head": "mlp", "hidden": []}, "hidden"),
        ({"hidden": [64]}, "hidden"),  # head is "linear"
        ({"shared_head": True}, "shared_head"),  # feature_dims (32, 24) differ
    ],
)
def test_bad_parameters(params: dict, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        BilinearCritic(feature_dims=(32, 24), **params)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")


def test_recipe_parameters(registry: Registry) -> None:
    def build(**params):
        return build_component(registry, "critics", {"name": "bilinear", **params}, table="critic", injected={"feature_dims": (32, 24)})

    with pytest.raises(ConfigError, match=r"^critic\.shared_head: "):
        build(shared_head=True)
    with pytest.raises(ConfigError, match=r"^critic\.normalize: "):
        build(normalize="yes")
    critic = build(head="mlp", hidden=[64, 32], embedding_dim=16, normalize=False, temperature=1.0)
    assert critic.registered_name == "bilinear" and critic.weight.shape == (16, 16)
