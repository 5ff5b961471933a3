"""``debiased``: Debiased Contrastive Learning (Chuang et al., NeurIPS 2020), corrected for false negatives.

Chuang, Robinson, Lin, Torralba & Jegelka, "Debiased Contrastive Learning" (arXiv:2007.00224).
Negatives drawn from the data include, with probability ``tau+`` (the class prior), samples of the
anchor's own class. The debiased loss subtracts their expected share from the negatives' sum. For
an anchor ``x`` with positive ``x+``, ``N`` negatives ``u_i`` and ``M`` positives ``v_i``, the
paper's eq. 6 (``tau- = 1 - tau+``, ``t`` the temperature, ``f`` unit-norm)::

    g = max{ 1/tau- ( 1/N sum_i exp(f(x).f(u_i)/t) - tau+ 1/M sum_i exp(f(x).f(v_i)/t) ),  exp(-1/t) }

    L = E[ -log( exp(f(x).f(x+)/t) / (exp(f(x).f(x+)/t) + N g) ) ]

The ``max`` keeps the estimate of the negatives' term above its theoretical minimum ``exp(-1/t)``
(a cosine is at least ``-1``). In contrastkit's :class:`~contrastkit.interfaces.PairLogits` layout
(``logits [B, K+1]``, positive ``s+`` at ``target[b]``, negatives ``s-_k``, the critic's
temperature already applied) with the positive itself as the one positive sample (``M = 1``, as in
the paper's code) and ``N`` the anchor's finite negatives::

    N g = max{ (sum_k exp(s-_k) - tau+ N exp(s+)) / (1 - tau+),  N exp(min_logit) }

    L = mean_b -log( exp(s+) / (exp(s+) + N g) ) = mean_b softplus(log(N g) - s+)

``min_logit`` is the lowest logit the critic can give: ``-1 / t`` for the ``cosine`` critic at
temperature ``t`` (the default, ``-1 / 0.07``, matches the default critic). It is computed in log
space, with no overflow at any temperature. ``tau+ = 0`` is InfoNCE whenever the clamp is inactive
(always, for cosine logits with ``min_logit = -1/t``).

Columns set to ``-inf`` are excluded: they add nothing and do not count in ``N``. An anchor with
no finite negative has ``N = 0``, so ``N g = 0`` and its loss is 0 (as InfoNCE's cross-entropy
gives it); it still counts in the mean.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(debiased_contrastive_loss(logits, torch.tensor([0, 1]), tau_plus=0.0)), 4)  # InfoNCE
    0.2395
    >>> # log(1 + (2 - 0.1 * 2 e^2) / 0.9 / e^2): the positive's expected share removed from the negatives
    >>> round(float(debiased_contrastive_loss(logits, torch.tensor([0, 1]), tau_plus=0.1)), 4)
    0.0756
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.objectives.infonce import info_nce_mi_bound

__all__ = [
    "DEFAULT_MIN_LOGIT",
    "DebiasedContrastiveLoss",
    "check_min_logit",
    "check_tau_plus",
    "debiased_contrastive_loss",
    "debiased_log_negatives",
    "split_negatives",
]

#: ``-1 / 0.07``: the lowest logit of the default ``cosine`` critic (temperature 0.07).
DEFAULT_MIN_LOGIT = -1 / 0.07


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_tau_plus(tau_plus: float) -> float:
    """``tau_plus`` as a float in ``[0, 1)`` (errors name ``tau_plus``).

    Example:
        >>> check_tau_plus(0.1)
        0.1
        >>> check_tau_plus(1.0)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: tau_plus: must be a number in [0, 1), the class prior of a negative (got 1.0)
    """
    if not (_real(tau_plus) and 0.0 <= tau_plus < 1.0):
        raise InvalidParameter("tau_plus", "must be a number in [0, 1), the class prior of a negative", tau_plus)
    return float(tau_plus)


def check_min_logit(min_logit: float) -> float:
    """``min_logit`` as a finite float (errors name ``min_logit``).

    Example:
        >>> check_min_logit(-2)
        -2.0
    """
    if not _real(min_logit):
        raise InvalidParameter(
            "min_logit", "must be a finite number (-1 / temperature for the cosine critic)", min_logit
        )
    return float(min_logit)


def split_negatives(logits: Tensor, target: Tensor, *, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(positive [B], negatives [B, K+1], valid [B, K+1] bool)``: the positive and the finite negatives.

    Non-negative columns (the positive, ``-inf``) of ``negatives`` hold ``-inf``, except in rows with
    no finite negative at all, which hold 0 (so that ``logsumexp`` and its gradient stay finite;
    callers drop those rows with ``valid.any(dim=1)``). Half precision is promoted to float32.

    Example:
        >>> import torch
        >>> positive, negatives, valid = split_negatives(torch.tensor([[1.0, 2.0, float("-inf")]]),
        ...                                              torch.tensor([0]), name="debiased")
        >>> positive.tolist(), negatives.tolist(), valid.tolist()
        ([1.0], [[-inf, 2.0, -inf]], [[False, True, False]])
    """
    if logits.ndim != 2 or logits.shape[1] < 2 or target.shape != logits.shape[:1]:
        raise ShapeError(f"objectives.{name}: logits must be [B, K+1] (K >= 1) and target [B], "
                         f"got {tuple(logits.shape)} and {tuple(target.shape)}")
    if logits.element_size() < 4:  # half precision (autocast): the log-space sums in float32
        logits = logits.float()
    column = target.long().unsqueeze(1)
    positive = logits.gather(1, column).squeeze(1)
    not_positive = torch.ones_like(logits, dtype=torch.bool).scatter_(1, column, False)
    valid = not_positive & (logits > float("-inf"))
    usable = valid.any(dim=1, keepdim=True)
    fill = torch.where(usable, torch.full_like(logits, float("-inf")), torch.zeros_like(logits))
    return positive, torch.where(valid, logits, fill), valid


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2`` (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def debiased_log_negatives(
    positive: Tensor,
    log_negatives: Tensor,
    num_negatives: Tensor,
    *,
    tau_plus: float,
    min_logit: float,
) -> Tensor:
    """``log(N g)``, ``[B]``: the debiased, clamped estimate of the negatives' term, from ``log Q``.

    ``Q = exp(log_negatives)`` is the (estimated) sum of the ``N = num_negatives`` negatives'
    ``exp(s-)``; then ``N g = max((Q - tau+ N exp(s+)) / (1 - tau+), N exp(min_logit))``. Rows with
    ``N = 0`` give ``-inf``. Shared by ``debiased`` and ``hard-negatives`` (which reweights ``Q``).

    Example:
        >>> import torch
        >>> q, n, s = torch.log(torch.tensor([10.0])), torch.tensor([4]), torch.tensor([0.0])
        >>> round(float(debiased_log_negatives(s, q, n, tau_plus=0.5, min_logit=-2.0).exp()), 4)  # (10 - 2) / 0.5
        16.0
        >>> s = torch.tensor([2.0])  # 10 - 0.5 * 4 e^2 < 0: the clamp, 4 e^-2
        >>> round(float(debiased_log_negatives(s, q, n, tau_plus=0.5, min_logit=-2.0).exp()), 4)
        0.5413
    """
    tau_plus = check_tau_plus(tau_plus)
    min_logit = check_min_logit(min_logit)
    count = num_negatives.to(positive.dtype)
    has = count > 0
    log_n = torch.where(has, count, torch.ones_like(count)).log()
    log_floor = log_n + min_logit
    q = torch.where(has, log_negatives, torch.zeros_like(log_negatives))  # finite everywhere
    if tau_plus == 0.0:
        log_raw = q
        above = (q > log_floor).detach()
    else:
        # Q - tau+ N e^{s+} beats the floor iff log Q > log(tau+ N e^{s+} + (1 - tau+) N e^{min_logit}).
        with torch.no_grad():
            threshold = torch.logaddexp(math.log(tau_plus) + log_n + positive, math.log1p(-tau_plus) + log_floor)
            above = q > threshold
        ratio = math.log(tau_plus) + log_n + positive - q  # log(tau+ N e^{s+} / Q) < 0 where above
        ratio = torch.where(above, ratio, torch.full_like(ratio, -1.0))
        log_raw = q + _log1mexp(ratio) - math.log1p(-tau_plus)
    log_ng = torch.where(above, log_raw, log_floor)
    return torch.where(has, log_ng, torch.full_like(log_ng, float("-inf")))


def _loss_from(positive: Tensor, log_ng: Tensor) -> Tensor:
    """``mean_b softplus(log(N g) - s+)``; rows with ``log(N g) = -inf`` give exactly 0."""
    return F.softplus(log_ng - positive).mean()


def debiased_contrastive_loss(
    logits: Tensor, target: Tensor, *, tau_plus: float = 0.1, min_logit: float = DEFAULT_MIN_LOGIT
) -> Tensor:
    """Chuang et al.'s debiased loss of ``logits [B, K+1]`` (positive at column ``target [B]``); mean over anchors.

    Example:
        >>> import torch
        >>> logits, target = torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)
        >>> round(float(debiased_contrastive_loss(logits, target, tau_plus=0.0)), 4)  # log 5
        1.6094
        >>> round(float(debiased_contrastive_loss(logits, target, tau_plus=0.2)), 4)  # log(1 + (4 - 0.8) / 0.8)
        1.6094
    """
    positive, negatives, valid = split_negatives(logits, target, name="debiased")
    log_q = torch.logsumexp(negatives, dim=1)
    log_ng = debiased_log_negatives(positive, log_q, valid.sum(dim=1), tau_plus=tau_plus, min_logit=min_logit)
    return _loss_from(positive, log_ng)


class DebiasedContrastiveLoss(nn.Module):
    """The debiased contrastive objective (Chuang et al. 2020); ``two_way`` adds the reverse direction.

    ``tau_plus`` is the class prior ``tau+`` (the paper uses 0.1 on CIFAR-10 and STL-10); ``min_logit``
    the lowest logit the critic gives (``-1 / temperature`` for ``cosine``), which sets the clamp
    ``N exp(min_logit)``. ``same_view_negatives = True`` gives the paper's SimCLR negatives
    (``2B - 2`` with ``in-batch``).

    :meth:`mi_lower_bound` is InfoNCE's ``log(K + 1) - L`` when ``tau_plus = 0`` (the clamp can only
    raise the loss above InfoNCE's, so the bound still holds) and ``None`` otherwise: the debiased
    estimate of the negatives' term can fall below their sum, and then the loss below InfoNCE's.

    Example:
        >>> import torch
        >>> objective = DebiasedContrastiveLoss(tau_plus=0.05, min_logit=-1 / 0.5)
        >>> loss = objective(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
        >>> round(float(loss), 4), objective.mi_lower_bound(loss, 2)
        (0.0858, None)
        >>> round(float(DebiasedContrastiveLoss(tau_plus=0.0).mi_lower_bound(torch.tensor(0.5), 2)), 4)  # log 3 - 0.5
        0.5986
    """

    def __init__(
        self,
        *,
        two_way: bool = True,
        tau_plus: float = 0.1,
        min_logit: float = DEFAULT_MIN_LOGIT,
        same_view_negatives: bool = False,
    ) -> None:
        super().__init__()
        self.tau_plus = check_tau_plus(tau_plus)
        self.min_logit = check_min_logit(min_logit)
        self.two_way = two_way
        #: Read by the pipeline: pass ``same_view=True`` to the sampler's ``pair_logits`` (SimCLR's 2B - 2).
        self.same_view_negatives = same_view_negatives

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return debiased_contrastive_loss(logits, target, tau_plus=self.tau_plus, min_logit=self.min_logit)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor | None:
        """``log(K + 1) - loss`` with ``tau_plus = 0``; ``None`` otherwise (see the class doc)."""
        return info_nce_mi_bound(loss, num_negatives) if self.tau_plus == 0.0 else None

    def extra_repr(self) -> str:
        return (f"two_way={self.two_way}, tau_plus={self.tau_plus}, min_logit={self.min_logit:g}, "
                f"same_view_negatives={self.same_view_negatives}")
