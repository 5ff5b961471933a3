"""Pixel-wise invertible flow over the channels of ``[B, C, H, W]``: InfoMin's view generator ``g``.

InfoMin (Tian et al. 2020, "What makes for good views", seed 000) learns views with a flow-based
generator that acts on each pixel's colour vector independently, so ``g`` can recolour an image but
never move, blur or drop pixels, and it stays invertible (no information about ``X`` is lost). The
layers here are Glow's (Kingma & Dhariwal 2018) restricted to ``1x1`` kernels:

- :class:`InvertibleConv1x1`: ``y = W x`` per pixel; ``log|det dy/dx| = H * W * log|det W|`` per sample.
  ``lu = True`` stores ``W = P L (U + diag(sign * exp(log_s)))`` (Glow's LU form): ``det W`` can never
  reach 0, so ``W`` stays invertible however the adversary pushes it.
- :class:`AffineCoupling`: splits the channels ``a | b`` (``C // 2`` and the rest: ``1 | 2`` for
  RGB), keeps one half and maps the other by ``x * exp(log_s) + t``, where ``(log_s, t)`` come from a
  pixel-wise MLP (``1x1`` convs) of the kept half. ``log_s = tanh(s)`` bounds each layer's scale to
  ``(1/e, e)`` for stability.
- :class:`PixelFlow`: ``num_layers`` steps ``conv1x1 -> coupling``; the couplings alternate which half
  they keep, so every channel is transformed even while the ``1x1`` convs are the identity.

``volume_preserving = True`` makes every layer's Jacobian determinant 1 (``logdet == 0``): the
coupling's log-scales are centred per pixel (NICE's additive coupling when one channel is
transformed) and ``W`` is rescaled to ``|det W| = 1``. InfoMin compares such volume-preserving (VP)
flows with non-volume-preserving (NVP) ones; a VP ``g`` cannot shrink the colour space as a whole.

No ActNorm: the view maker feeds colour spaces already normalised to about ``[-1, 1]``, the flow is
a few pixel-wise layers, and ActNorm's data-dependent initialisation would make the first batch
special and break the identity at initialisation (below).

Identity at initialisation: :class:`PixelFlow` defaults to ``init = "identity"`` (the ``1x1`` convs
start at ``I`` and each coupling's last layer at zero, as in Glow), so ``g`` starts as the raw colour
space and stage 1 of InfoMin starts from the hand-made views (e.g. CMC's ``Y | DbDr``).
``init = "rotation"`` starts the convs at random rotations, Glow's default.

Example:
    >>> import torch
    >>> flow = PixelFlow(channels=3, num_layers=2, hidden=8, init="rotation").double()
    >>> x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    >>> y, logdet = flow(x)
    >>> y.shape, logdet.shape
    (torch.Size([2, 3, 4, 4]), torch.Size([2]))
    >>> bool(torch.allclose(flow.inverse(y), x, atol=1e-10))
    True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError

__all__ = ["AffineCoupling", "InvertibleConv1x1", "PixelFlow", "random_rotation"]

Init = Literal["identity", "rotation"]


def random_rotation(channels: int) -> Tensor:
    """A random ``[C, C]`` orthogonal matrix (Glow's initialisation of a ``1x1`` conv), from the global RNG.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> q = random_rotation(3)
        >>> bool(torch.allclose(q @ q.T, torch.eye(3), atol=1e-6))
        True
    """
    q, r = torch.linalg.qr(torch.randn(channels, channels))
    # Sign fix so the distribution is uniform over orthogonal matrices (Mezzadri 2007).
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def _check_images(x: Tensor, channels: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ShapeError(f"{who}: expected input [B, {channels}, H, W], got {tuple(x.shape)}")


class InvertibleConv1x1(nn.Module):
    """Glow's invertible ``1x1`` convolution: ``y = W x`` per pixel, ``W`` ``[C, C]``.

    ``forward(x) -> (y, logdet)`` with ``logdet`` ``[B]`` ``= H * W * log|det W|``; ``inverse(y)``
    applies ``W^-1``. ``lu`` selects Glow's LU parametrisation (``det W`` never 0);
    ``volume_preserving`` fixes ``|det W| = 1``; ``init`` is ``"rotation"`` (random orthogonal, Glow)
    or ``"identity"``.

    Example:
        >>> import torch
        >>> conv = InvertibleConv1x1(channels=3, lu=False)
        >>> x = torch.randn(2, 3, 5, 5)
        >>> y, logdet = conv(x)
        >>> bool(torch.allclose(logdet, torch.zeros(2), atol=1e-4))  # a rotation keeps volume
        True
        >>> bool(torch.allclose(conv.inverse(y), x, atol=1e-5))
        True
    """

    # Buffers of the LU parametrisation (registered only when ``lu``).
    permutation: Tensor
    sign_s: Tensor
    lower_mask: Tensor
    eye: Tensor

    def __init__(
        self,
        *,
        channels: int,
        lu: bool = True,
        volume_preserving: bool = False,
        init: Init = "rotation",
    ) -> None:
        super().__init__()
        if channels < 1:
            raise InvalidParameter("channels", "must be >= 1", channels)
        if init not in ("identity", "rotation"):
            raise InvalidParameter("init", 'must be "identity" or "rotation"', init)
        self.channels = channels
        self.lu = lu
        self.volume_preserving = volume_preserving
        initial = torch.eye(channels) if init == "identity" else random_rotation(channels)
        if not lu:
            self.weight = nn.Parameter(initial)
            return
        permutation, lower, upper = torch.linalg.lu(initial)
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign_s", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), diagonal=-1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, diagonal=1))
        self.log_s = nn.Parameter(torch.log(diagonal.abs()))

    def _log_s(self) -> Tensor:
        # Centred log-scales: sum(log|s|) = log|det W| = 0 under volume preservation.
        return self.log_s - self.log_s.mean() if self.volume_preserving else self.log_s

    def matrix_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        """``(W, log|det W|)``, the matrix as used (after the volume-preserving rescale, if any).

        Example:
            >>> import torch
            >>> w, logabsdet = InvertibleConv1x1(channels=3, init="identity").matrix_and_logabsdet()
            >>> bool(torch.equal(w, torch.eye(3))), float(logabsdet.detach())
            (True, 0.0)
        """
        # A C x C matrix: build it in full precision even under autocast (inv/slogdet need it).
        device_type = self.eye.device.type if self.lu else self.weight.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._matrix_and_logabsdet()

    def _matrix_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        if self.lu:
            log_s = self._log_s()
            lower = self.lower * self.lower_mask + self.eye
            upper = torch.triu(self.upper, diagonal=1) + torch.diag(self.sign_s * torch.exp(log_s))
            return self.permutation @ lower @ upper, log_s.sum()
        logabsdet = torch.linalg.slogdet(self.weight).logabsdet
        if self.volume_preserving:
            return self.weight * torch.exp(-logabsdet / self.channels), logabsdet.new_zeros(())
        return self.weight, logabsdet

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``[B, C, H, W]`` -> ``(W x, logdet [B])``."""
        _check_images(x, self.channels, "InvertibleConv1x1")
        weight, logabsdet = self.matrix_and_logabsdet()
        y = F.conv2d(x, weight.to(x.dtype)[:, :, None, None])
        logdet = (logabsdet * (x.shape[2] * x.shape[3])).to(x.dtype).expand(x.shape[0])
        return y, logdet

    def inverse(self, y: Tensor) -> Tensor:
        """``y`` ``[B, C, H, W]`` -> ``W^-1 y``."""
        _check_images(y, self.channels, "InvertibleConv1x1")
        weight, _ = self.matrix_and_logabsdet()
        return F.conv2d(y, torch.linalg.inv(weight).to(y.dtype)[:, :, None, None])

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lu={self.lu}, volume_preserving={self.volume_preserving}"


class AffineCoupling(nn.Module):
    """Affine coupling over channels with a pixel-wise conditioner (``1x1`` convs: the flow stays pixel-wise).

    The channels split at ``C // 2`` into ``a | b``; ``parity = 0`` keeps ``a`` and transforms ``b``,
    ``parity = 1`` the reverse. The transformed half becomes ``x * exp(log_s) + t`` with
    ``log_s = tanh(s)`` and ``(s, t) = MLP(kept half)``; the MLP's last layer starts at zero, so the
    layer starts as the identity. ``volume_preserving`` centres ``log_s`` over the transformed
    channels of each pixel (``logdet == 0``; with one transformed channel the coupling is additive).

    Example:
        >>> import torch
        >>> coupling = AffineCoupling(channels=3, hidden=8)
        >>> x = torch.randn(2, 3, 4, 4)
        >>> y, logdet = coupling(x)
        >>> bool(torch.equal(y, x)), logdet.tolist()  # identity at initialisation
        (True, [0.0, 0.0])
    """

    def __init__(
        self,
        *,
        channels: int,
        hidden: int = 32,
        volume_preserving: bool = False,
        parity: int = 0,
    ) -> None:
        super().__init__()
        if channels < 2:
            raise InvalidParameter("channels", "a coupling needs >= 2 channels to split", channels)
        if hidden < 1:
            raise InvalidParameter("hidden", "must be >= 1", hidden)
        if parity not in (0, 1):
            raise InvalidParameter("parity", "must be 0 or 1", parity)
        self.channels = channels
        self.volume_preserving = volume_preserving
        self.parity = parity
        first = channels // 2
        kept, transformed = (first, channels - first) if parity == 0 else (channels - first, first)
        self.kept_slice = slice(0, first) if parity == 0 else slice(first, channels)
        self.transformed_slice = slice(first, channels) if parity == 0 else slice(0, first)
        self.transformed = transformed
        last = nn.Conv2d(hidden, 2 * transformed, kernel_size=1)
        nn.init.zeros_(last.weight)
        assert last.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(last.bias)
        self.conditioner = nn.Sequential(
            nn.Conv2d(kept, hidden, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel_size=1),
            nn.ReLU(),
            last,
        )

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_scale, shift = self.conditioner(kept).chunk(2, dim=1)
        log_s = torch.tanh(raw_scale)  # bounded: each layer scales by at most e or 1/e
        if self.volume_preserving:
            log_s = log_s - log_s.mean(dim=1, keepdim=True)
        return log_s, shift

    def _merge(self, kept: Tensor, transformed: Tensor) -> Tensor:
        parts = (kept, transformed) if self.parity == 0 else (transformed, kept)
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``[B, C, H, W]`` -> ``(y, logdet [B])``, ``logdet`` the sum of the log-scales."""
        _check_images(x, self.channels, "AffineCoupling")
        kept, moved = x[:, self.kept_slice], x[:, self.transformed_slice]
        log_s, shift = self._scale_shift(kept)
        y = self._merge(kept, moved * torch.exp(log_s) + shift)
        return y, log_s.sum(dim=(1, 2, 3))

    def inverse(self, y: Tensor) -> Tensor:
        """``y`` ``[B, C, H, W]`` -> ``x`` with ``forward(x)[0] == y``."""
        _check_images(y, self.channels, "AffineCoupling")
        kept, moved = y[:, self.kept_slice], y[:, self.transformed_slice]
        log_s, shift = self._scale_shift(kept)
        return self._merge(kept, (moved - shift) * torch.exp(-log_s))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, parity={self.parity}, volume_preserving={self.volume_preserving}"


class PixelFlow(nn.Module):
    """``num_layers`` steps of ``InvertibleConv1x1 -> AffineCoupling`` (alternating parity), pixel-wise.

    ``forward(x) -> (y, logdet [B])``, ``inverse(y) -> x``. ``init = "identity"`` (default) makes the
    whole flow the identity at initialisation; ``"rotation"`` starts each ``1x1`` conv at a random
    rotation. See the module docstring for ``volume_preserving`` and ``lu``.

    Example:
        >>> import torch
        >>> flow = PixelFlow(channels=3, num_layers=3, hidden=8, volume_preserving=True)
        >>> x = torch.randn(2, 3, 4, 4)
        >>> y, logdet = flow(x)
        >>> bool(torch.equal(y, x)), logdet.tolist()  # identity at init, volume-preserving
        (True, [0.0, 0.0])
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        num_layers: int = 4,
        hidden: int = 32,
        volume_preserving: bool = False,
        lu: bool = True,
        init: Init = "identity",
    ) -> None:
        super().__init__()
        if channels < 2:
            raise InvalidParameter("channels", "the flow's couplings need >= 2 channels", channels)
        if num_layers < 1:
            raise InvalidParameter("num_layers", "must be >= 1", num_layers)
        if hidden < 1:
            raise InvalidParameter("hidden", "must be >= 1", hidden)
        if init not in ("identity", "rotation"):
            raise InvalidParameter("init", 'must be "identity" or "rotation"', init)
        self.channels = channels
        self.layers = nn.ModuleList()
        for index in range(num_layers):
            self.layers.append(
                InvertibleConv1x1(channels=channels, lu=lu, volume_preserving=volume_preserving, init=init)
            )
            self.layers.append(
                AffineCoupling(channels=channels, hidden=hidden, volume_preserving=volume_preserving, parity=index % 2)
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``[B, C, H, W]`` -> ``(g(x), log|det dg/dx| [B])``."""
        _check_images(x, self.channels, "PixelFlow")
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_logdet = layer(x)
            logdet = logdet + layer_logdet
        return x, logdet

    def inverse(self, y: Tensor) -> Tensor:
        """``y`` ``[B, C, H, W]`` -> ``g^-1(y)``."""
        _check_images(y, self.channels, "PixelFlow")
        for layer in reversed(self.layers):
            y = layer.inverse(y)  # type: ignore[operator]  # ModuleList items are typed Module; each layer has inverse
        return y
