"""``resnet18`` and ``resnet50``: ResNets (random init) with a width multiplier, for any channel count.

Both are built by one private builder from torchvision's ``BasicBlock`` / ``Bottleneck`` blocks, with
every stage's channel count scaled by ``width``: the stem and the four stages have ``round(64 * width)``
times ``1, 1, 2, 4, 8`` channels, and a bottleneck's inner and outer widths scale alike (CMC's
ResNet-50 x0.5 / x1 / x2). At ``width = 1`` the layers, names and parameter counts are exactly
torchvision's ``resnet18`` / ``resnet50`` without ``fc``. The first convolution takes ``in_channels``;
``cifar_stem = True`` replaces the 7x7/stride-2 convolution and the max-pool with a 3x3/stride-1
convolution, so 32-pixel images are not shrunk to 8x8 before the first stage. The classifier is
removed: the encoder returns the globally pooled features, ``F = 512 * width`` (ResNet-18) or
``2048 * width`` (ResNet-50), exactly ``8 * round(64 * width)`` times 1 or 4. Weights are never
downloaded.

Example:
    >>> import torch
    >>> enc = ResNet18Encoder(in_channels=2, cifar_stem=True)
    >>> enc(torch.rand(2, 2, 32, 32)).shape
    torch.Size([2, 512])
    >>> ResNet50Encoder(in_channels=1, width=0.5).feature_dim
    1024
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter

__all__ = ["ResNet18Encoder", "ResNet50Encoder"]

MIN_WIDTH = 1 / 64  # one channel in the stem
MAX_WIDTH = 16.0  # 1024 stem channels: larger values are almost surely a channel count typed as a multiplier

# Forward order of the trunk's modules (torchvision's names, so state dicts match at width 1).
_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")


def _check_common(in_channels: int, width: float) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise InvalidParameter("in_channels", "must be an integer >= 1", in_channels)
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or not math.isfinite(width)
        or not MIN_WIDTH <= width <= MAX_WIDTH
    ):
        raise InvalidParameter(
            "width", f"must be a multiplier between 1/64 and {MAX_WIDTH:g} (e.g. 0.5, 1 or 2)", width
        )


def _build_resnet(
    block_kind: Literal["basic", "bottleneck"],
    blocks_per_stage: tuple[int, int, int, int],
    *,
    in_channels: int,
    width: float,
    cifar_stem: bool,
    zero_init_residual: bool,
) -> tuple[OrderedDict[str, nn.Module], int]:
    """The trunk's modules in forward order (torchvision's names) and the pooled feature width."""
    _check_common(in_channels, width)
    from torchvision.models.resnet import BasicBlock, Bottleneck  # lazy: keeps CLI start-up fast

    block: type[BasicBlock] | type[Bottleneck] = BasicBlock if block_kind == "basic" else Bottleneck
    base = max(1, round(64 * width))
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    if cifar_stem:
        modules["conv1"] = nn.Conv2d(in_channels, base, kernel_size=3, stride=1, padding=1, bias=False)
    else:
        modules["conv1"] = nn.Conv2d(in_channels, base, kernel_size=7, stride=2, padding=3, bias=False)
    modules["bn1"] = nn.BatchNorm2d(base)
    modules["relu"] = nn.ReLU(inplace=True)
    modules["maxpool"] = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    channels = base
    for stage, num_blocks in enumerate(blocks_per_stage):
        planes = base * 2**stage
        out = planes * block.expansion
        stride = 1 if stage == 0 else 2
        # A projection shortcut wherever the block changes resolution or width (torchvision's rule).
        downsample = None
        if stride != 1 or channels != out:
            downsample = nn.Sequential(
                nn.Conv2d(channels, out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        layer = [block(channels, planes, stride, downsample)]
        layer += [block(out, planes) for _ in range(1, num_blocks)]
        modules[f"layer{stage + 1}"] = nn.Sequential(*layer)
        channels = out
    modules["avgpool"] = nn.AdaptiveAvgPool2d(1)
    assert tuple(modules) == _TRUNK

    # torchvision's ResNet initialisation, so width = 1 starts from the same distribution.
    for module in modules.values():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    if zero_init_residual:  # each residual branch starts as zero, so every block starts as identity
        for module in modules.values():
            for m in module.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)
    return modules, channels


class _ResNetTrunk(nn.Module):
    """The encoders' shared body: a subclass names its block kind and its blocks per stage."""

    _block_kind: ClassVar[Literal["basic", "bottleneck"]]
    _blocks_per_stage: ClassVar[tuple[int, int, int, int]]

    def __init__(
        self,
        *,
        in_channels: int,
        width: float = 1.0,
        cifar_stem: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        modules, features = _build_resnet(
            self._block_kind,
            self._blocks_per_stage,
            in_channels=in_channels,
            width=width,
            cifar_stem=cifar_stem,
            zero_init_residual=zero_init_residual,
        )
        for name, module in modules.items():
            self.add_module(name, module)
        self.in_channels = in_channels
        self.width = width
        self.feature_dim = features

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W] -> [B, feature_dim]``."""
        for name in _TRUNK:
            x = getattr(self, name)(x)
        return x.flatten(1)  # flatten, not view: channels_last outputs are not contiguous


class ResNet18Encoder(_ResNetTrunk):
    """ResNet-18 trunk: ``[B, in_channels, H, W] -> [B, 512 * width]``. Weights are never downloaded.

    ``width`` scales every channel count (``round(64 * width)`` in the stem, between 1/64 and 16);
    ``cifar_stem`` uses a 3x3/stride-1 first convolution and no max-pool (for small images);
    ``zero_init_residual`` zeroes the last batch norm of each block so it starts as the identity.

    Example:
        >>> import torch
        >>> enc = ResNet18Encoder(in_channels=1, width=0.25)
        >>> enc.feature_dim, tuple(enc(torch.rand(2, 1, 32, 32)).shape)
        (128, (2, 128))
    """

    _block_kind = "basic"
    _blocks_per_stage = (2, 2, 2, 2)


class ResNet50Encoder(_ResNetTrunk):
    """ResNet-50 trunk: ``[B, in_channels, H, W] -> [B, 2048 * width]``. Weights are never downloaded.

    CMC's ResNet-50 x0.5 / x1 / x2 are ``width = 0.5 / 1 / 2``; the bottlenecks' inner and outer
    widths both scale. Other parameters as for :class:`ResNet18Encoder`.

    Example:
        >>> import torch
        >>> enc = ResNet50Encoder(in_channels=2, width=0.25, cifar_stem=True)
        >>> enc.feature_dim, tuple(enc(torch.rand(2, 2, 16, 16)).shape)
        (512, (2, 512))
    """

    #: The contract test builds the encoder with these: width 1 is slow on a CPU.
    contract_params: ClassVar[dict[str, Any]] = {"width": 0.25}

    _block_kind = "bottleneck"
    _blocks_per_stage = (3, 4, 6, 3)
