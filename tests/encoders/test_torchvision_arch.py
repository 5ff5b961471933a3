"""The ``torchvision`` encoder: any classification architecture, adapted input, classifier removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.encoders.torchvision_arch import TorchvisionEncoder, torchvision_architectures
from contrastkit.errors import InvalidParameter
from contrastkit.testing import check_encoder

# Three families (plain ResNet, inverted residuals with an MLP classifier, EfficientNet with dropout).
FEATURES = {"resnet34": 512, "mobilenet_v3_small": 1024, "efficientnet_b0": 1280}


def first_conv(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("arch", list(FEATURES))
@pytest.mark.parametrize("in_channels", [1, 2, 3])
def test_shapes_for_channels_and_sizes(arch: str, in_channels: int) -> None:
    enc = TorchvisionEncoder(in_channels=in_channels, arch=arch)
    assert enc.feature_dim == FEATURES[arch]
    for size in (32, 64):
        out = enc(torch.rand(2, in_channels, size, size))
        assert out.shape == (2, FEATURES[arch])
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ["resnet34", "efficientnet_b0", "convnext_tiny"])
def test_input_conv_keeps_its_configuration(arch: str) -> None:
    import torchvision

    original = first_conv(torchvision.models.get_model(arch, weights=None))
    adapted = first_conv(TorchvisionEncoder(in_channels=4, arch=arch))
    assert adapted.in_channels == 4
    for attr in ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode"):
        assert getattr(adapted, attr) == getattr(original, attr), attr
    assert (adapted.bias is None) == (original.bias is None)
    # The new weights keep the architecture's initial scale (within sampling noise).
    ratio = float(adapted.weight.detach().std() / original.weight.detach().std())
    assert 0.7 < ratio < 1.4


def test_classifier_and_its_dropout_are_removed() -> None:
    """MobileNetV3's head is Linear, Hardswish, Dropout, Linear: the last two go, so training is deterministic."""
    enc = TorchvisionEncoder(in_channels=3, arch="mobilenet_v3_small").train()
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in enc.modules())
    assert not any(isinstance(m, nn.Dropout) for m in enc.net.classifier)
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(enc(x), enc(x))


def test_convolutional_classifier() -> None:
    """SqueezeNet classifies with a 1x1 convolution, not a Linear layer."""
    enc = TorchvisionEncoder(in_channels=2, arch="squeezenet1_1")
    assert enc.feature_dim == 512
    assert enc(torch.rand(2, 2, 64, 64)).shape == (2, 512)


def test_auxiliary_heads_are_dropped() -> None:
    """GoogLeNet returns a tuple with its auxiliary classifiers in training mode; the encoder must not."""
    enc = TorchvisionEncoder(in_channels=1, arch="googlenet").train()
    x = torch.rand(2, 1, 32, 32)
    out = enc(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, enc.feature_dim) == (2, 1024)
    assert not [name for name, _ in enc.named_modules() if "aux" in name]
    assert torch.equal(enc(x), out), "no dropout is left on the features: the same batch gives the same features"


@pytest.mark.parametrize(("cifar_stem", "stem_size"), [(True, 32), (False, 8)])
def test_cifar_stem_keeps_resolution(cifar_stem: bool, stem_size: int) -> None:
    enc = TorchvisionEncoder(in_channels=2, arch="resnet34", cifar_stem=cifar_stem)
    seen: list[tuple[int, ...]] = []
    enc.net.maxpool.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    assert enc(torch.rand(2, 2, 32, 32)).shape == (2, 512)
    assert seen == [(2, 64, stem_size, stem_size)]
    assert enc.net.conv1.in_channels == 2


def test_cifar_stem_only_for_resnets() -> None:
    with pytest.raises(InvalidParameter, match="^cifar_stem: only ResNet-family") as info:
        TorchvisionEncoder(in_channels=3, arch="mobilenet_v3_small", cifar_stem=True)
    assert info.value.parameter == "cifar_stem"


def test_unknown_arch_suggests_close_names() -> None:
    with pytest.raises(InvalidParameter) as info:
        TorchvisionEncoder(in_channels=3, arch="resnet43")
    assert info.value.parameter == "arch" and info.value.got == "resnet43"
    assert str(info.value) == "arch: unknown torchvision architecture; did you mean 'resnet34'? (got 'resnet43')"


@pytest.mark.parametrize("arch", ["zzz", "fasterrcnn_resnet50_fpn"])
def test_unknown_arch_without_match(arch: str) -> None:
    """Detection models are not classification architectures, so they are unknown here too."""
    with pytest.raises(InvalidParameter, match="^arch: unknown torchvision architecture"):
        TorchvisionEncoder(in_channels=3, arch=arch)


def test_architectures_are_classification_models() -> None:
    names = torchvision_architectures()
    assert {"resnet34", "mobilenet_v3_small", "convnext_tiny", "vit_b_16"} <= set(names)
    assert "fasterrcnn_resnet50_fpn" not in names


def test_invalid_in_channels() -> None:
    with pytest.raises(InvalidParameter, match="^in_channels:"):
        TorchvisionEncoder(in_channels=0)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_contract_with_defaults(in_channels: int) -> None:
    enc = TorchvisionEncoder(in_channels=in_channels)
    assert enc.arch == "resnet18" and enc.feature_dim == 512
    check_encoder(enc, in_channels=in_channels)


@pytest.mark.parametrize("arch", ["resnet34", "mobilenet_v3_small"])
def test_channels_last_matches_contiguous(arch: str) -> None:
    enc = TorchvisionEncoder(in_channels=2, arch=arch).eval()
    x = torch.rand(2, 2, 32, 32)
    expected = enc(x)
    enc = enc.to(memory_format=torch.channels_last)
    out = enc(x.to(memory_format=torch.channels_last))
    assert torch.allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("arch", ["resnet34", "mobilenet_v3_small"])
def test_bf16_autocast(arch: str) -> None:
    enc = TorchvisionEncoder(in_channels=3, arch=arch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, enc.feature_dim)
    assert torch.isfinite(out.float()).all()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["convnext_tiny", "regnet_y_400mf", "shufflenet_v2_x0_5", "densenet121", "swin_t"])
def test_more_families(arch: str) -> None:
    enc = TorchvisionEncoder(in_channels=2, arch=arch)
    check_encoder(enc, in_channels=2, size=64)
