"""ResNet-18/50 encoders: shapes, width multiplier against torchvision, CIFAR stem, validation, contract."""

from __future__ import annotations

import ast
import inspect
import math
from types import ModuleType

import pytest
import torch
from torch import nn

from contrastkit.encoders import resnet as resnet_module
from contrastkit.encoders import torchvision_arch as torchvision_arch_module
from contrastkit.encoders.resnet import ResNet18Encoder, ResNet50Encoder
from contrastkit.errors import InvalidParameter
from contrastkit.testing import check_encoder

ENCODERS = [ResNet18Encoder, ResNet50Encoder]
IDS = ["resnet18", "resnet50"]
BASE_FEATURES = {ResNet18Encoder: 512, ResNet50Encoder: 2048}


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
@pytest.mark.parametrize("in_channels", [1, 2, 3, 4])
def test_shapes_and_feature_dim(cls: type[nn.Module], in_channels: int) -> None:
    enc = cls(in_channels=in_channels, width=0.25)
    assert enc.conv1.in_channels == in_channels
    assert enc.feature_dim == BASE_FEATURES[cls] // 4
    out = enc(torch.rand(2, in_channels, 16, 16))
    assert out.shape == (2, enc.feature_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", IDS)
def test_width_1_is_torchvisions_network_without_fc(arch: str) -> None:
    """Same parameter count, and the same names and shapes, so torchvision weights would load."""
    import torchvision

    cls = dict(zip(IDS, ENCODERS))[arch]
    with torch.device("meta"):  # no memory, no initialisation cost: only shapes are compared
        reference = torchvision.models.get_model(arch, weights=None)
        reference.fc = nn.Identity()
        enc = cls(in_channels=3, width=1.0)
    assert num_params(enc) == num_params(reference)
    assert {k: v.shape for k, v in enc.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert enc.feature_dim == BASE_FEATURES[cls]


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
def test_width_scales_every_channel_count(cls: type[nn.Module]) -> None:
    with torch.device("meta"):
        half, one, two = (cls(in_channels=3, width=w) for w in (0.5, 1.0, 2.0))
    assert math.isclose(num_params(two) / num_params(one), 4.0, rel_tol=0.01)
    assert math.isclose(num_params(half) / num_params(one), 0.25, rel_tol=0.01)
    assert (half.feature_dim, two.feature_dim) == (BASE_FEATURES[cls] // 2, BASE_FEATURES[cls] * 2)
    assert two.conv1.out_channels == 128
    last_block = two.layer4[-1]
    if cls is ResNet50Encoder:  # the bottleneck's inner and outer widths both scale
        assert (last_block.conv2.out_channels, last_block.conv3.out_channels) == (1024, 4096)
    else:
        assert last_block.conv2.out_channels == 1024


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
@pytest.mark.parametrize(("cifar_stem", "stem_size"), [(True, 32), (False, 8)])
def test_cifar_stem_keeps_resolution(cls: type[nn.Module], cifar_stem: bool, stem_size: int) -> None:
    enc = cls(in_channels=3, width=0.25, cifar_stem=cifar_stem)
    seen: list[tuple[int, ...]] = []
    enc.maxpool.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    enc(torch.rand(2, 3, 32, 32))
    assert seen == [(2, 16, stem_size, stem_size)]
    assert enc.conv1.kernel_size == ((3, 3) if cifar_stem else (7, 7))


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
def test_zero_init_residual(cls: type[nn.Module]) -> None:
    last_bn = "bn3" if cls is ResNet50Encoder else "bn2"
    zeroed = cls(in_channels=3, width=0.25, zero_init_residual=True)
    plain = cls(in_channels=3, width=0.25)
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(zeroed, layer):
            assert bool((getattr(block, last_bn).weight == 0).all())
    assert bool((plain.layer1[0].get_submodule(last_bn).weight == 1).all())


@pytest.mark.parametrize("width", [0, -1.0, 0.001, 100.0, float("nan"), float("inf"), True])
def test_invalid_width(width: float) -> None:
    with pytest.raises(InvalidParameter, match="^width: must be a multiplier") as info:
        ResNet18Encoder(in_channels=3, width=width)
    assert info.value.parameter == "width"


def test_invalid_in_channels() -> None:
    with pytest.raises(InvalidParameter, match="^in_channels:"):
        ResNet50Encoder(in_channels=0)


def test_width_extremes_run() -> None:
    """The documented range works: the narrowest stem has one channel."""
    enc = ResNet18Encoder(in_channels=2, width=1 / 64, cifar_stem=True)
    assert enc.conv1.out_channels == 1 and enc.feature_dim == 8
    assert enc(torch.rand(2, 2, 8, 8)).shape == (2, 8)


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_contract(cls: type[nn.Module], in_channels: int) -> None:
    params = dict(getattr(cls, "contract_params", {}))
    check_encoder(cls(in_channels=in_channels, **params), in_channels=in_channels, size=16)


def test_contract_params_are_small() -> None:
    """The registry's contract test builds ResNet-50 with contract_params; width 1 is slow on a CPU."""
    assert ResNet50Encoder.contract_params == {"width": 0.25}


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
def test_channels_last_matches_contiguous(cls: type[nn.Module]) -> None:
    enc = cls(in_channels=2, width=0.25).eval()
    x = torch.rand(2, 2, 16, 16)
    expected = enc(x)
    enc = enc.to(memory_format=torch.channels_last)
    out = enc(x.to(memory_format=torch.channels_last))
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("cls", ENCODERS, ids=IDS)
def test_bf16_autocast(cls: type[nn.Module]) -> None:
    enc = cls(in_channels=3, width=0.25)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, enc.feature_dim)
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("module", [resnet_module, torchvision_arch_module], ids=["resnet", "torchvision_arch"])
def test_torchvision_is_imported_lazily(module: ModuleType) -> None:
    """The CLI imports every built-in at start-up; torchvision (seconds) must wait until an encoder is built."""
    tree = ast.parse(inspect.getsource(module))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
    assert names and not [n for n in names if n.split(".")[0] == "torchvision"]
