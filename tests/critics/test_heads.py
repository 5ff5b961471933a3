"""Projection heads: shapes, batch norm and hidden widths (ReLIC's head too), shared vs per-view heads, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.critics.heads import ProjectionHeads, build_head
from contrastkit.errors import InvalidParameter

RELIC_HIDDEN = [4096, 2048, 1024, 512]


def linears(head: nn.Module) -> list[nn.Linear]:
    return [m for m in head.modules() if isinstance(m, nn.Linear)]


def batch_norms(head: nn.Module) -> list[nn.BatchNorm1d]:
    return [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)]


@pytest.mark.parametrize(("kind", "out"), [("none", 24), ("linear", 8), ("mlp", 8)])
def test_head_shapes(kind: str, out: int) -> None:
    head = build_head(kind, 24, 8)
    assert head(torch.randn(5, 24)).shape == (5, out)


def test_none_and_linear_heads() -> None:
    x = torch.randn(5, 24)
    assert torch.equal(build_head("none", 24, 8)(x), x)
    linear = build_head("linear", 24, 8)
    (weight, bias), = [(m.weight, m.bias) for m in linears(linear)]  # one affine map, with a bias
    assert bias is not None and not batch_norms(linear)
    torch.testing.assert_close(linear(x), x @ weight.T + bias)


def test_mlp_default_is_simclrs_head() -> None:
    """hidden=None: Linear(F, F, no bias) -> BN(F) -> ReLU -> Linear(F, D): the critic's earlier mlp head."""
    head = build_head("mlp", 24, 8)
    assert [type(m).__name__ for m in head] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    first, last = linears(head)
    assert (first.in_features, first.out_features, first.bias) == (24, 24, None)
    assert (last.in_features, last.out_features) == (24, 8) and last.bias is not None
    assert batch_norms(head)[0].num_features == 24


@pytest.mark.parametrize("hidden", [[16], [64, 32], [7, 5, 3]])
def test_mlp_hidden_widths(hidden: list[int]) -> None:
    head = build_head("mlp", 24, 8, hidden=hidden)
    layers = linears(head)
    assert [(m.in_features, m.out_features) for m in layers] == list(zip([24, *hidden], [*hidden, 8]))
    assert [m.num_features for m in batch_norms(head)] == hidden, "one batch norm after every hidden layer"
    assert all(m.bias is None for m in layers[:-1]) and layers[-1].bias is not None
    assert sum(isinstance(m, nn.ReLU) for m in head) == len(hidden)
    assert isinstance(head[-1], nn.Linear), "no batch norm or activation on the output"
    assert head(torch.randn(4, 24)).shape == (4, 8)


def test_relic_head_builds() -> None:
    """ReLIC with a ResNet-50: 2048 features -> [4096, 2048, 1024, 512] -> 128, BN after every hidden layer."""
    torch.manual_seed(0)
    head = build_head("mlp", 2048, 128, hidden=RELIC_HIDDEN)
    widths = [(m.in_features, m.out_features) for m in linears(head)]
    assert widths == [(2048, 4096), (4096, 2048), (2048, 1024), (1024, 512), (512, 128)]
    assert [m.num_features for m in batch_norms(head)] == RELIC_HIDDEN
    expected = sum(i * o for i, o in widths) + 128 + 2 * sum(RELIC_HIDDEN)  # weights, output bias, BN affine
    assert sum(p.numel() for p in head.parameters()) == expected
    with torch.no_grad():
        out = head(torch.randn(2, 2048))
    assert out.shape == (2, 128) and torch.isfinite(out).all()


def test_relic_head_through_a_critic() -> None:
    from contrastkit.critics.cosine import CosineCritic

    critic = CosineCritic(feature_dims=(2048, 2048), head="mlp", hidden=RELIC_HIDDEN, shared_head=True)
    x = torch.randn(2, 2048)
    with torch.no_grad():
        z = critic.embed(x, view=1)
        expected = torch.nn.functional.normalize(critic.heads[0](x), dim=1)  # the shared head, then unit norm
    assert z.shape == (2, 128)
    torch.testing.assert_close(z, expected)


def test_per_view_heads_are_distinct() -> None:
    heads = ProjectionHeads("mlp", (16, 12, 16), 8, hidden=[10])
    assert len(heads) == 3 and heads.embedding_dim == 8
    assert heads[0] is not heads[2]
    ids = [{id(p) for p in heads[v].parameters()} for v in range(3)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])
    assert linears(heads[1])[0].in_features == 12
    assert sorted({k.split(".")[0] for k in heads.state_dict()}) == ["0", "1", "2"]
    assert heads(torch.randn(4, 12), view=1).shape == (4, 8)


def test_shared_head_is_one_module() -> None:
    heads = ProjectionHeads("mlp", (16, 16), 8, hidden=[10], shared=True)
    assert heads[0] is heads[1]
    assert [id(p) for p in heads[0].parameters()] == [id(p) for p in heads[1].parameters()]
    assert sum(p.numel() for p in heads.parameters()) == sum(p.numel() for p in build_head("mlp", 16, 8, [10]).parameters())
    assert {k.split(".")[0] for k in heads.state_dict()} == {"shared"}
    # both views train the same parameters and update the same batch-norm statistics
    x0, x1 = torch.randn(6, 16), torch.randn(6, 16) + 3.0
    (heads(x0, view=0).sum() + heads(x1, view=1).sum()).backward()
    assert linears(heads[0])[0].weight.grad is not None
    assert int(batch_norms(heads[0])[0].num_batches_tracked) == 2


def test_shared_none_head_and_embedding_dim() -> None:
    heads = ProjectionHeads("none", (16, 16), 8, shared=True)
    x = torch.randn(3, 16)
    assert heads.embedding_dim == 16 and torch.equal(heads(x, view=1), x) and list(heads.parameters()) == []


def test_view_out_of_range() -> None:
    heads = ProjectionHeads("linear", (4, 4), 2)
    with pytest.raises(IndexError, match="view 2 out of range"):
        heads[2]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"kind": "deep"}, "head"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"kind": "mlp", "hidden": []}, "hidden"),
        ({"kind": "mlp", "hidden": [8, 0]}, "hidden"),
        ({"kind": "mlp", "hidden": [8.5]}, "hidden"),
        ({"kind": "linear", "hidden": [8]}, "hidden"),
        ({"kind": "none", "hidden": [8]}, "hidden"),
        ({"feature_dims": (16, 12), "shared": True}, "shared_head"),
        ({"kind": "none", "feature_dims": (16, 12)}, "head"),
    ],
)
def test_bad_parameters(kwargs: dict, parameter: str) -> None:
    args = {"kind": "linear", "feature_dims": (16, 16), "embedding_dim": 8} | kwargs
    kind, dims, dim = args.pop("kind"), args.pop("feature_dims"), args.pop("embedding_dim")
    with pytest.raises(InvalidParameter) as info:
        ProjectionHeads(kind, dims, dim, **args)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")


def test_shared_head_error_names_the_feature_dims() -> None:
    with pytest.raises(InvalidParameter, match=r"shared_head: .*feature_dims \(16, 12\)"):
        ProjectionHeads("mlp", (16, 12), 8, shared=True)
