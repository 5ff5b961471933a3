"""The pixel-wise flow: exact inverses, log-determinants against a brute-force float64 Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.views.flow_layers import AffineCoupling, InvertibleConv1x1, PixelFlow, random_rotation

CONFIGS = [(vp, lu) for vp in (False, True) for lu in (False, True)]
IDS = [f"{'vp' if vp else 'nvp'}-{'lu' if lu else 'dense'}" for vp, lu in CONFIGS]


def _perturbed(module: nn.Module, seed: int, scale: float = 0.3) -> nn.Module:
    """``module`` in float64 with every parameter moved off its (often identity) initialisation."""
    module = module.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module


def _flow(vp: bool, lu: bool, channels: int = 3, seed: int = 0) -> PixelFlow:
    torch.manual_seed(seed)
    flow = PixelFlow(channels=channels, num_layers=3, hidden=6, volume_preserving=vp, lu=lu, init="rotation")
    return _perturbed(flow, seed + 100)


def _brute_force_logdet(fn, x: torch.Tensor) -> float:
    """log|det| of the full Jacobian of ``fn`` at one sample ``x`` [1, C, H, W] (float64)."""
    jac = torch.autograd.functional.jacobian(lambda t: fn(t)[0], x)
    n = x.numel()
    return float(np.linalg.slogdet(jac.reshape(n, n).numpy())[1])


@pytest.mark.parametrize(("vp", "lu"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("channels", [3, 4])
def test_inverse_recovers_input(vp: bool, lu: bool, channels: int) -> None:
    flow = _flow(vp, lu, channels)
    x = torch.randn(4, channels, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, _ = flow(x)
    assert (y - x).abs().max() > 0.1, "the perturbed flow should not be the identity"
    torch.testing.assert_close(flow.inverse(y), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("vp", "lu"), CONFIGS, ids=IDS)
def test_logdet_matches_brute_force_jacobian(vp: bool, lu: bool) -> None:
    flow = _flow(vp, lu)
    x = torch.randn(1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _, logdet = flow(x)
    expected = _brute_force_logdet(flow, x)
    ours = float(logdet[0].detach())
    assert ours == pytest.approx(expected, abs=1e-8)
    if vp:
        assert abs(ours) < 1e-12
        assert expected == pytest.approx(0.0, abs=1e-8)
    else:
        assert abs(expected) > 1e-3, "a perturbed non-volume-preserving flow should change volume"


@pytest.mark.parametrize("lu", [False, True])
def test_conv1x1_logdet_is_pixels_times_log_det_w(lu: bool) -> None:
    torch.manual_seed(3)
    conv = _perturbed(InvertibleConv1x1(channels=3, lu=lu), 4)
    x = torch.randn(2, 3, 3, 5, dtype=torch.float64)
    y, logdet = conv(x)
    weight, _ = conv.matrix_and_logabsdet()
    w = weight.detach().numpy()
    expected = 15 * np.log(abs(np.linalg.det(w)))
    np.testing.assert_allclose(logdet.detach().numpy(), [expected, expected], atol=1e-10)
    reference = np.einsum("ij,bjhw->bihw", w, x.numpy())  # y = W x at every pixel
    np.testing.assert_allclose(y.detach().numpy(), reference, atol=1e-12)
    assert _brute_force_logdet(conv, x[:1, :, :2, :2]) == pytest.approx(4 * np.log(abs(np.linalg.det(w))), abs=1e-8)


@pytest.mark.parametrize("lu", [False, True])
def test_volume_preserving_conv_has_unit_determinant(lu: bool) -> None:
    torch.manual_seed(5)
    conv = _perturbed(InvertibleConv1x1(channels=4, lu=lu, volume_preserving=True), 6, scale=1.0)
    weight, logabsdet = conv.matrix_and_logabsdet()
    assert abs(np.linalg.det(weight.detach().numpy())) == pytest.approx(1.0, abs=1e-10)
    assert float(logabsdet.detach()) == pytest.approx(0.0, abs=1e-12)


def test_coupling_volume_preserving_logdet_is_zero_and_scale_is_bounded() -> None:
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    for parity in (0, 1):
        vp = _perturbed(AffineCoupling(channels=3, hidden=5, volume_preserving=True, parity=parity), 8, scale=3.0)
        y, logdet = vp(x)
        assert torch.equal(logdet, torch.zeros(3, dtype=torch.float64))
        assert (y - x).abs().max() > 0.1
        nvp = _perturbed(AffineCoupling(channels=3, hidden=5, parity=parity), 9, scale=3.0)
        transformed = 2 if parity == 0 else 1  # C = 3 splits 1 | 2
        with torch.no_grad():
            nvp.conditioner[-1].weight[:transformed] = 0.0
            nvp.conditioner[-1].bias[:transformed] = 50.0  # a huge raw scale at every pixel
        y, logdet = nvp(x)
        # tanh bounds each log-scale by 1: the 16 pixels' logdet saturates at transformed * 16.
        np.testing.assert_allclose(logdet.detach().numpy(), [transformed * 16.0] * 3, rtol=1e-12)
        assert torch.isfinite(y).all()


def test_coupling_keeps_the_conditioning_half() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    y0, _ = _perturbed(AffineCoupling(channels=3, hidden=4, parity=0), 10)(x)
    y1, _ = _perturbed(AffineCoupling(channels=3, hidden=4, parity=1), 11)(x)
    assert torch.equal(y0[:, :1], x[:, :1]) and not torch.allclose(y0[:, 1:], x[:, 1:])
    assert torch.equal(y1[:, 1:], x[:, 1:]) and not torch.allclose(y1[:, :1], x[:, :1])


def test_flow_is_pixel_wise() -> None:
    """Changing one pixel changes only that pixel of the output (1x1 kernels only)."""
    flow = _flow(False, True)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    moved = x.clone()
    moved[0, :, 1, 2] += 1.0
    diff = (flow(moved)[0] - flow(x)[0]).abs().sum(1)[0]
    assert diff[1, 2] > 0
    diff[1, 2] = 0
    assert torch.equal(diff, torch.zeros_like(diff))


def test_identity_at_init_and_rotation_init_preserves_pixel_norms() -> None:
    x = torch.randn(2, 3, 4, 4)
    y, logdet = PixelFlow(num_layers=3, hidden=4)(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))
    torch.manual_seed(12)
    y, _ = PixelFlow(num_layers=3, hidden=4, init="rotation")(x)
    assert not torch.allclose(y, x, atol=1e-2)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), atol=1e-5, rtol=0)  # rotations, identity couplings


def test_random_rotation_is_orthogonal() -> None:
    torch.manual_seed(13)
    q = random_rotation(5).double().numpy()
    np.testing.assert_allclose(q @ q.T, np.eye(5), atol=1e-6)


def test_gradients_reach_every_layer_type() -> None:
    torch.manual_seed(14)
    flow = PixelFlow(num_layers=2, hidden=4, init="rotation")
    y, logdet = flow(torch.randn(2, 3, 4, 4))
    (y.square().sum() + logdet.sum()).backward()
    for name, p in flow.named_parameters():
        if name.endswith(("conditioner.4.weight", "log_s", "upper")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("build", "parameter"),
    [
        (lambda: PixelFlow(num_layers=0), "num_layers"),
        (lambda: PixelFlow(hidden=0), "hidden"),
        (lambda: PixelFlow(channels=1), "channels"),
        (lambda: PixelFlow(init="zeros"), "init"),
        (lambda: AffineCoupling(channels=3, parity=2), "parity"),
        (lambda: InvertibleConv1x1(channels=0), "channels"),
    ],
)
def test_invalid_parameters_are_named(build, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        build()
    assert info.value.parameter == parameter


def test_wrong_channel_count_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"PixelFlow: expected input \[B, 3, H, W\]"):
        PixelFlow(num_layers=1, hidden=2)(torch.zeros(1, 4, 2, 2))


@pytest.mark.parametrize("lu", [False, True])
def test_runs_under_bf16_autocast_with_a_full_precision_matrix(lu: bool) -> None:
    torch.manual_seed(15)
    flow = PixelFlow(num_layers=2, hidden=4, lu=lu, init="rotation")
    _perturbed(flow, 16).float()
    x = torch.randn(2, 3, 4, 4)
    reference, reference_logdet = flow(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, logdet = flow(x)
        weight, _ = flow.layers[0].matrix_and_logabsdet()
        recovered = flow.inverse(y)
    assert weight.dtype == torch.float32
    torch.testing.assert_close(y.float(), reference, atol=0.1, rtol=0.05)
    torch.testing.assert_close(logdet.float(), reference_logdet, atol=0.2, rtol=0.05)
    torch.testing.assert_close(recovered.float(), x, atol=0.1, rtol=0.05)
