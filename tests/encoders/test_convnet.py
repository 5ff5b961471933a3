"""convnet's pooling grid and fully-connected layer (the encoder's shapes and contract are covered by the registry contract tests)."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.errors import InvalidParameter


def test_pool_size_keeps_a_grid_of_features() -> None:
    torch.manual_seed(0)
    grid = ConvNetEncoder(in_channels=1, width=4, depth=2, pool_size=2).eval()
    assert grid.feature_dim == 8 * 4 and grid(torch.rand(3, 1, 16, 16)).shape == (3, 32)
    # The same blob in two corners: the cells of the 2x2 grid change a lot, their mean (what global
    # average pooling gives) hardly at all (translation equivariance, up to the borders).
    left, right = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    left[..., 4:7, 4:7], right[..., 9:12, 9:12] = 1.0, 1.0
    with torch.no_grad():
        a, b = grid(left).view(8, 4), grid(right).view(8, 4)
    assert (a - b).abs().max() > 3 * (a.mean(1) - b.mean(1)).abs().max()


def test_default_is_global_average_pooling() -> None:
    enc = ConvNetEncoder(in_channels=3, width=8, depth=3)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(enc(x), enc.body(x).mean((2, 3)))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_pool_size_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^pool_size: must be an integer >= 1"):
        ConvNetEncoder(in_channels=1, pool_size=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_fc_dim_ends_with_a_learned_layer_over_the_grid(norm: str) -> None:
    torch.manual_seed(0)
    enc = ConvNetEncoder(in_channels=1, width=4, depth=2, pool_size=2, fc_dim=6, norm=norm).eval()
    x = torch.rand(3, 1, 16, 16)
    assert enc.feature_dim == 6
    with torch.no_grad():
        grid = enc.pool(enc.body(x)).flatten(1)
        linear, normalise = enc.fc[0], enc.fc[1]
        expected = torch.relu(normalise(linear(grid)))
        assert torch.allclose(enc(x), expected)
    # every grid cell reaches the output: the layer sees the whole layout
    assert linear.weight.shape == (6, 8 * 4)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_fc_dim_must_be_a_non_negative_integer(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="^fc_dim: must be an integer >= 0"):
        ConvNetEncoder(in_channels=1, fc_dim=bad)  # type: ignore[arg-type]
