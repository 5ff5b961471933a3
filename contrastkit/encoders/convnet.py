"""``convnet``: a small all-convolutional encoder, quick on a CPU for small images.

``depth`` blocks of 3x3 conv -> normalisation -> ReLU; every block after the first halves the
resolution and doubles the width; global average pooling gives ``F = width * 2**(depth-1)``.

``pool_size > 1`` average-pools to a ``pool_size x pool_size`` grid instead and flattens it
(``F = width * 2**(depth-1) * pool_size**2``): global pooling makes the features nearly blind to
*where* things are (seed 000's position task), a grid keeps a coarse layout.

``norm`` picks the normalisation: ``"batch"`` (batch norm, the default), ``"group"`` (group norm
with up to 8 groups: per sample, so a batch split over processes computes exactly what one process
with the whole batch computes, and small per-GPU batches are fine) or ``"none"``.

``fc_dim > 0`` ends the encoder with a fully-connected layer (linear -> normalisation -> ReLU) from
the pooled features to ``F = fc_dim``, as small conv nets for digits do: a learned, compact
representation that can keep the layout a grid holds (where the digit is) or drop it, where grid
features hand the layout to any probe whatever the training did.

Example:
    >>> import torch
    >>> enc = ConvNetEncoder(in_channels=1, width=16, depth=3)
    >>> enc.feature_dim, tuple(enc(torch.rand(2, 1, 32, 32)).shape)
    (64, (2, 64))
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter

__all__ = ["ConvNetEncoder"]


class ConvNetEncoder(nn.Module):
    """Small convolutional encoder: ``[B, in_channels, H, W] -> [B, width * 2**(depth-1)]``.

    Example:
        >>> import torch
        >>> ConvNetEncoder(in_channels=3)(torch.rand(4, 3, 16, 16)).shape
        torch.Size([4, 256])
        >>> enc = ConvNetEncoder(in_channels=3, pool_size=2)  # a 2x2 grid: where things are survives
        >>> enc.feature_dim, enc(torch.rand(4, 3, 32, 32)).shape
        (1024, torch.Size([4, 1024]))
        >>> enc = ConvNetEncoder(in_channels=3, pool_size=4, fc_dim=128)  # grid -> learned 128-d vector
        >>> enc.feature_dim, enc(torch.rand(4, 3, 32, 32)).shape
        (128, torch.Size([4, 128]))
    """

    def __init__(
        self,
        *,
        in_channels: int,
        width: int = 32,
        depth: int = 4,
        norm: Literal["batch", "group", "none"] = "batch",
        pool_size: int = 1,
        fc_dim: int = 0,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "group", "none"):
            raise InvalidParameter("norm", "must be 'batch', 'group' or 'none'", norm)
        if width < 1:
            raise InvalidParameter("width", "must be >= 1", width)
        if not 1 <= depth <= 8:
            raise InvalidParameter("depth", "must be between 1 and 8", depth)
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise InvalidParameter("pool_size", "must be an integer >= 1 (1: global average pooling)", pool_size)
        if isinstance(fc_dim, bool) or not isinstance(fc_dim, int) or fc_dim < 0:
            raise InvalidParameter("fc_dim", "must be an integer >= 0 (0: no fully-connected layer)", fc_dim)
        layers: list[nn.Module] = []
        channels = in_channels
        for block in range(depth):
            out = width * 2**block
            layers += [
                nn.Conv2d(channels, out, 3, stride=1 if block == 0 else 2, padding=1, bias=False),
                _norm(norm, out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.in_channels = in_channels
        self.norm = norm
        self.pool_size = pool_size
        self.fc_dim = fc_dim
        pooled = channels * pool_size**2
        self.fc: nn.Module = nn.Identity()
        if fc_dim:
            # no bias before the normalisation, as in the conv blocks
            self.fc = nn.Sequential(nn.Linear(pooled, fc_dim, bias=norm == "none"), _norm(norm, fc_dim, spatial=False),
                                    nn.ReLU(inplace=True))
        self.feature_dim = fc_dim or pooled

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W] -> [B, feature_dim]``."""
        return self.fc(self.pool(self.body(x)).flatten(1))


def _norm(kind: str, channels: int, *, spatial: bool = True) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()

