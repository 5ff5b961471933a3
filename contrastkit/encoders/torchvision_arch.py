"""``torchvision``: any torchvision classification architecture by name, as an encoder (random init).

The network is built with ``torchvision.models.get_model(arch, weights=None)`` (weights are never
downloaded), then adapted:

- the first convolution (the first ``nn.Conv2d`` in module order) is rebuilt for ``in_channels``
  with the same kernel, stride, padding and output width; its weights are drawn from a normal
  distribution with the standard deviation of the ones it replaces, so the architecture keeps its
  own initial scale (with 3 channels the original convolution is kept as it is);
- the classifier is removed: the last classification layer (the last ``nn.Linear``, or for
  SqueezeNet its 1x1 ``nn.Conv2d``) becomes ``nn.Identity``, as does any dropout right before it.
  ``F`` is that layer's input width (512 for ``resnet34``, 1024 for ``mobilenet_v3_small``,
  1280 for ``efficientnet_b0``, 768 for ``convnext_tiny``, 4096 for VGG), and hidden layers of a
  multi-layer classifier stay part of the encoder.

``cifar_stem = True`` (ResNet family only: ``resnet*``, ``resnext*``, ``wide_resnet*``) swaps the
7x7/stride-2 stem convolution and max-pool for a 3x3/stride-1 convolution. ``googlenet`` and
``inception_v3`` are built without their auxiliary classifiers. Some architectures limit the image
size: ``vit_*`` and ``maxvit_t`` accept only 224-pixel images, ``inception_v3`` needs at least 75
pixels and ``alexnet`` at least 63; the others run on 32-pixel images.

Example:
    >>> import torch
    >>> enc = TorchvisionEncoder(in_channels=2, arch="mobilenet_v3_small")
    >>> enc.feature_dim, tuple(enc(torch.rand(2, 2, 32, 32)).shape)
    (1024, (2, 1024))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, close_matches

__all__ = ["TorchvisionEncoder", "torchvision_architectures"]

NUM_CLASSES = 1000  # torchvision's default head size: how the classification layer is recognised

# Builder arguments some architectures need: their auxiliary heads would return a tuple in training.
_EXTRA_CONFIG: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def torchvision_architectures() -> list[str]:
    """The names ``arch`` accepts: torchvision's classification models (``list_models`` of ``torchvision.models``).

    Example:
        >>> {"resnet34", "efficientnet_b0", "convnext_tiny"} <= set(torchvision_architectures())
        True
    """
    import torchvision  # lazy: importing it adds seconds to every CLI start-up

    return list(torchvision.models.list_models(module=torchvision.models))


def _set_submodule(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _replace_input_conv(net: nn.Module, in_channels: int, arch: str) -> None:
    name, conv = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), ("", None))
    if conv is None or conv.in_channels != 3 or conv.groups != 1:
        problem = "cannot find the input convolution of this architecture; it is not supported"
        raise InvalidParameter("arch", problem, arch)
    if in_channels == conv.in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        new.weight.normal_(0.0, float(conv.weight.std()))
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(net, name, new)


def _remove_classifier(net: nn.Module, arch: str) -> int:
    """Replace the classification layer (and dropout right before it) with Identity; return its input width."""
    name, layer = "", None
    for n, m in net.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            name, layer = n, m
    if isinstance(layer, nn.Linear) and layer.out_features == NUM_CLASSES:
        features = layer.in_features
    elif isinstance(layer, nn.Conv2d) and layer.out_channels == NUM_CLASSES and layer.kernel_size == (1, 1):
        features = layer.in_channels
    else:
        problem = "cannot find the classifier of this architecture; it is not supported"
        raise InvalidParameter("arch", problem, arch)
    _set_submodule(net, name, nn.Identity())
    # Dropout registered just before the classifier acts on the features themselves: remove it too.
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    siblings = list(parent.named_children())
    position = [n for n, _ in siblings].index(child)
    for sibling_name, sibling in reversed(siblings[:position]):
        if not isinstance(sibling, nn.modules.dropout._DropoutNd):
            break
        setattr(parent, sibling_name, nn.Identity())
    return features


class TorchvisionEncoder(nn.Module):
    """A torchvision classification network without its classifier: ``[B, in_channels, H, W] -> [B, F]``.

    ``arch`` is any name of :func:`torchvision_architectures` (``"resnet34"``, ``"efficientnet_b0"``,
    ``"mobilenet_v3_small"``, ``"convnext_tiny"``, ...); ``cifar_stem`` (ResNet family only) uses a
    3x3/stride-1 first convolution and no max-pool. Weights are never downloaded.

    Example:
        >>> import torch
        >>> enc = TorchvisionEncoder(in_channels=1, arch="resnet34", cifar_stem=True)
        >>> enc.feature_dim, tuple(enc(torch.rand(2, 1, 32, 32)).shape)
        (512, (2, 512))
        >>> TorchvisionEncoder(in_channels=3, arch="resnet43")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: arch: unknown torchvision architecture; did you mean 'resnet34'? (got 'resnet43')
    """

    def __init__(self, *, in_channels: int, arch: str = "resnet18", cifar_stem: bool = False) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise InvalidParameter("in_channels", "must be an integer >= 1", in_channels)
        import torchvision  # lazy: importing it adds seconds to every CLI start-up

        known = torchvision_architectures()
        if arch not in known:
            matches = close_matches(str(arch).lower(), known)
            hint = (
                f"did you mean {matches[0]!r}?"
                if matches
                else "see torchvision.models.list_models(module=torchvision.models) for the names"
            )
            raise InvalidParameter("arch", f"unknown torchvision architecture; {hint}", arch)
        net = torchvision.models.get_model(arch, weights=None, **_EXTRA_CONFIG.get(arch, {}))
        if cifar_stem:
            if not isinstance(net, torchvision.models.ResNet):
                problem = f"only ResNet-family architectures (resnet*, resnext*, wide_resnet*) have one, not {arch!r}"
                raise InvalidParameter("cifar_stem", problem + "; remove it", cifar_stem)
            stem = nn.Conv2d(in_channels, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(stem.weight, mode="fan_out", nonlinearity="relu")  # torchvision's ResNet init
            net.conv1 = stem
            net.maxpool = nn.Identity()
        else:
            _replace_input_conv(net, in_channels, arch)
        self.feature_dim = _remove_classifier(net, arch)
        self.net = net
        self.arch = arch
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W] -> [B, feature_dim]``."""
        return self.net(x)
