"""``cosine``: CMC's critic ``h(v1, v2) = exp(cos(z1, z2) / tau)``, as logits ``cos / tau``.

Features pass through a projection head (``none``, ``linear`` or an ``mlp`` with batch norm, one per
view or one shared; see :mod:`contrastkit.critics.heads`) and are L2-normalised, so scores are
cosine similarities divided by the temperature ``tau`` (Tian et al. 2019, "Contrastive Multiview
Coding", eq. 2; SimCLR's NT-Xent uses the same similarity)::

    s(z1, z2) = z1 . z2 / (|z1| |z2| tau)

The temperature is fixed (``learn_temperature = false``, the default) or learned, as in CLIP
(Radford et al. 2021): the parameter is ``log tau`` (``log_temperature``, initialised at
``log(temperature)``), and the value used is clamped to ``temperature_range = [tau_min, tau_max]``
(CLIP keeps ``1 / tau <= 100``, i.e. ``tau >= 0.01``)::

    tau = exp(clamp(log_temperature, log tau_min, log tau_max))

At a bound the gradient is kept only when it points back inside the range (a gradient-descent
step then moves ``log tau`` back in), so the temperature can leave a bound it reached; a plain
``clamp`` would give it a zero gradient there forever.

Example:
    >>> import torch
    >>> critic = CosineCritic(feature_dims=(16, 16), head="linear", embedding_dim=8, temperature=0.1)
    >>> z = critic.embed(torch.rand(5, 16), view=1)
    >>> z.shape, bool(torch.allclose(z.norm(dim=1), torch.ones(5)))
    (torch.Size([5, 8]), True)
    >>> bool(torch.allclose(critic.score(z, z).diagonal(), torch.full((5,), 10.0)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.critics.heads import HeadKind, ProjectionHeads, build_head
from contrastkit.errors import InvalidParameter, ShapeError

__all__ = ["CosineCritic", "check_temperature", "cosine_logits", "inward_clamp"]


def cosine_logits(anchors: Tensor, candidates: Tensor, temperature: float | Tensor) -> Tensor:
    """Scores of unit-norm ``anchors [B, D]`` against ``candidates [K, D]`` or ``[B, K, D]`` -> ``[B, K]``.

    ``temperature`` is a float or a scalar tensor (a learned temperature).

    Example:
        >>> import torch
        >>> a = torch.eye(2)
        >>> cosine_logits(a, a, 0.5).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """
    if candidates.ndim == 2:
        return anchors @ candidates.T / temperature
    if candidates.ndim == 3:
        return torch.einsum("bd,bkd->bk", anchors, candidates) / temperature
    raise ShapeError(f"cosine critic: candidates must be [K, D] or [B, K, D], got {tuple(candidates.shape)}")


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float; it must be finite and > 0 (errors name ``temperature``).

    Example:
        >>> check_temperature(0)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: temperature: must be > 0 (got 0)
    """
    if not temperature > 0:
        raise InvalidParameter("temperature", "must be > 0", temperature)
    if not math.isfinite(temperature):
        raise InvalidParameter("temperature", "must be finite", temperature)
    return float(temperature)


class _InwardClamp(torch.autograd.Function):
    """``clamp(x, low, high)`` whose gradient is kept inside the range and, outside it, only when it points inward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, low: float, high: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        # Gradient descent moves x by -grad: above the range only grad > 0 moves it back, below only grad < 0.
        keep = ((x >= ctx.low) & (x <= ctx.high)) | ((x > ctx.high) & (grad > 0)) | ((x < ctx.low) & (grad < 0))
        return grad.masked_fill(~keep, 0.0), None, None


def inward_clamp(x: Tensor, low: float, high: float) -> Tensor:
    """``x.clamp(low, high)``, but outside the range the gradient passes when it points back inside.

    A plain clamp gives a parameter that crossed a bound a zero gradient, so it can never come back;
    this keeps the projected-gradient behaviour of CLIP's ``logit_scale.clamp_`` after each step.

    Example:
        >>> import torch
        >>> x = torch.tensor([2.0, 2.0], requires_grad=True)
        >>> y = inward_clamp(x, -1.0, 1.0)
        >>> (y * torch.tensor([1.0, -1.0])).sum().backward()  # descent: x[0] is pushed down, x[1] up
        >>> y.tolist(), x.grad.tolist()
        ([1.0, 1.0], [1.0, 0.0])
    """
    return _InwardClamp.apply(x, low, high)


class CosineCritic(nn.Module):
    """Cosine-similarity critic: a projection head per view (or shared), a fixed or learned temperature.

    ``head = "none"`` uses the features themselves (all views must then have the same ``F``).
    ``hidden`` lists the ``mlp`` head's hidden widths (``None``: one hidden layer as wide as the
    view's features). ``temperature`` is ``tau``; with ``learn_temperature`` it is the initial value
    of a learned ``tau``, clamped to ``temperature_range``. ``temperature`` (the attribute) is the
    current value as a float.

    Example:
        >>> critic = CosineCritic(feature_dims=(32, 32))
        >>> critic.embedding_dim, critic.temperature
        (128, 0.07)
        >>> learned = CosineCritic(feature_dims=(32, 32), learn_temperature=True, temperature=0.1)
        >>> learned.log_temperature.requires_grad, round(learned.temperature, 6)
        (True, 0.1)
    """

    #: ``score(a, b) == score(b, a).T``: the pipeline may reuse one direction's scores for the other.
    symmetric = True

    def __init__(
        self,
        *,
        feature_dims: tuple[int, ...],
        head: HeadKind = "linear",
        embedding_dim: int = 128,
        temperature: float = 0.07,
        hidden: list[int] | None = None,
        shared_head: bool = False,
        learn_temperature: bool = False,
        temperature_range: tuple[float, float] = (0.01, 1.0),
        predictor: list[int] | None = None,
    ) -> None:
        super().__init__()
        temperature = check_temperature(temperature)
        low, high = _check_range(temperature_range)
        if learn_temperature and not low <= temperature <= high:
            raise InvalidParameter(
                "temperature",
                f"must lie in temperature_range [{low:g}, {high:g}] when learn_temperature is true",
                temperature,
            )
        self.heads = ProjectionHeads(head, feature_dims, embedding_dim, hidden=hidden, shared=shared_head)
        self.head = head
        self.embedding_dim = self.heads.embedding_dim
        if predictor is not None and (not isinstance(predictor, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in predictor)):
            raise InvalidParameter("predictor", "must be a list of hidden widths such as [4096], or omitted", predictor)
        #: MoCo v3's prediction MLP on the online side (``None``: none); shared by every view.
        self.predictor = (build_head("mlp", self.embedding_dim, self.embedding_dim, hidden=predictor)
                          if predictor is not None else None)
        self.learn_temperature = bool(learn_temperature)
        self.temperature_range = (low, high)
        self._temperature = temperature
        if self.learn_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
            self._log_range = (math.log(low), math.log(high))

    def tau(self) -> float | Tensor:
        """The temperature used for scoring: the fixed float, or the clamped learned scalar tensor."""
        if not self.learn_temperature:
            return self._temperature
        return inward_clamp(self.log_temperature, *self._log_range).exp()

    @property
    def temperature(self) -> float:
        """The current temperature as a float (the learned one, clamped, with ``learn_temperature``)."""
        if not self.learn_temperature:
            return self._temperature
        with torch.no_grad():
            return float(self.tau())

    def embed(self, features: Tensor, view: int) -> Tensor:
        """``[B, F_view] -> [B, D]``, unit norm: the projection, then the predictor when there is one."""
        projected = self.heads[view](features)
        return F.normalize(self.predictor(projected) if self.predictor is not None else projected, dim=1)

    def embed_target(self, features: Tensor, view: int) -> Tensor:
        """The target (key) side's embedding: the projection only, unit norm."""
        return F.normalize(self.heads[view](features), dim=1)

    def score(self, anchors: Tensor, candidates: Tensor) -> Tensor:
        """``cos / tau`` of ``anchors [B, D]`` against ``[K, D]`` or ``[B, K, D]`` candidates -> ``[B, K]``."""
        return cosine_logits(anchors, candidates, self.tau())

    def extra_repr(self) -> str:
        learned = f" (learned, range {list(self.temperature_range)})" if self.learn_temperature else ""
        predictor = ", predictor" if self.predictor is not None else ""
        return f"head={self.head}, embedding_dim={self.embedding_dim}, temperature={self.temperature:g}{learned}{predictor}"


def _check_range(temperature_range: Sequence[float]) -> tuple[float, float]:
    values = list(temperature_range)
    ok = len(values) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    if not ok or not 0 < values[0] <= values[1]:
        raise InvalidParameter("temperature_range", "must be [min, max] with 0 < min <= max, finite", values)
    return float(values[0]), float(values[1])
