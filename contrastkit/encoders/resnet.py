"""``resnet18``: torchvision's ResNet-18 (random init), adapted to any input channel count.

The first convolution is rebuilt for ``in_channels``; the classifier is removed, so the encoder
returns the 512 pooled features. ``cifar_stem = true`` swaps the 7x7/stride-2 convolution and
max-pool for a 3x3/stride-1 convolution, the usual choice for 32-pixel images.

Example:
    >>> import torch
    >>> enc = ResNet18Encoder(in_channels=2, cifar_stem=True)
    >>> enc(torch.rand(2, 2, 32, 32)).shape
    torch.Size([2, 512])
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ResNet18Encoder"]


class ResNet18Encoder(nn.Module):
    """ResNet-18 trunk: ``[B, in_channels, H, W] -> [B, 512]``. Weights are never downloaded.

    Example:
        >>> ResNet18Encoder(in_channels=1).feature_dim
        512
    """

    def __init__(self, *, in_channels: int, cifar_stem: bool = False) -> None:
        super().__init__()
        import torchvision  # imported here: it adds seconds to every CLI start-up otherwise

        net = torchvision.models.resnet18(weights=None)
        if cifar_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W] -> [B, 512]``."""
        return self.net(x)
