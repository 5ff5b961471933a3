"""``hard-negatives``: Contrastive Learning with Hard Negative Samples (Robinson et al., ICLR 2021).

Robinson, Chuang, Sra & Jegelka, "Contrastive Learning with Hard Negative Samples"
(arXiv:2010.04592). Negatives are drawn, in effect, from ``q_beta(x-) ∝ exp(beta f(x).f(x-)) p(x-)``,
which favours the negatives the anchor already scores high (the hard ones), and debiased for false
negatives as in Chuang et al. 2020 (see :mod:`contrastkit.objectives.debiased`). The paper's eq. 3,
with ``Q = N`` negatives, ``tau- = 1 - tau+`` and temperature ``t``::

    L = E[ -log( e^{f(x).f(x+)/t} / (e^{f(x).f(x+)/t}
              + N/tau- ( E_{x- ~ q_beta}[e^{f(x).f(x-)/t}] - tau+ E_{v ~ q_beta+}[e^{f(x).f(v)/t}] )) ) ]

Both expectations are estimated by importance sampling from the batch: the ``N`` negatives, each
weighted by ``exp(beta s-_k)`` normalised over the anchor's negatives, and the positive itself for
``q_beta+`` (``M = 1``, as in the paper's code). In contrastkit's
:class:`~contrastkit.interfaces.PairLogits` layout (``logits [B, K+1]``, positive ``s+`` at
``target[b]``, negatives ``s-_k``, the critic's temperature already applied)::

    w_k = exp(beta s-_k) / sum_j exp(beta s-_j)

    N g = max{ (N sum_k w_k exp(s-_k) - tau+ N exp(s+)) / (1 - tau+),  N exp(min_logit) }

    L = mean_b -log( exp(s+) / (exp(s+) + N g) )

``beta`` multiplies the logits (``cos / t``), as the paper's code does (``imp = exp(beta * s)``).
The clamp ``N exp(min_logit)`` is the paper code's ``N e^{-1/t}``: ``min_logit = -1 / t`` for the
``cosine`` critic at temperature ``t``. Special cases: ``beta = 0`` is ``debiased``
(:func:`~contrastkit.objectives.debiased.debiased_contrastive_loss`, the same ``tau+`` and clamp);
``beta = 0, tau+ = 0`` is InfoNCE (with the clamp inactive, as it is for cosine logits). As
``beta`` grows the negatives' term tends to ``N exp(max_k s-_k)``: only the hardest negative counts.

Computed in log space, ``log(N sum_k w_k e^{s-_k}) = log N + logsumexp((1 + beta) s-) -
logsumexp(beta s-)``, with no overflow at any temperature. Columns set to ``-inf`` are excluded:
they get no weight and do not count in ``N``. An anchor with no finite negative has loss 0 and still
counts in the mean (as in ``debiased`` and InfoNCE).

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(hard_negative_loss(logits, torch.tensor([0, 1]), beta=0.0, tau_plus=0.0)), 4)  # InfoNCE
    0.2395
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.errors import InvalidParameter
from contrastkit.objectives.debiased import (
    DEFAULT_MIN_LOGIT,
    DebiasedContrastiveLoss,
    debiased_log_negatives,
    split_negatives,
)

__all__ = ["HardNegatives", "check_beta", "hard_negative_loss"]


def check_beta(beta: float) -> float:
    """``beta`` as a finite float ``>= 0`` (errors name ``beta``).

    Example:
        >>> check_beta(1)
        1.0
        >>> check_beta(-0.5)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: beta: must be a finite number >= 0 (0: no reweighting) (got -0.5)
    """
    ok = isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta) and beta >= 0
    if not ok:
        raise InvalidParameter("beta", "must be a finite number >= 0 (0: no reweighting)", beta)
    return float(beta)


def hard_negative_loss(
    logits: Tensor,
    target: Tensor,
    *,
    beta: float = 1.0,
    tau_plus: float = 0.1,
    min_logit: float = DEFAULT_MIN_LOGIT,
) -> Tensor:
    """Robinson et al.'s hard-negative loss of ``logits [B, K+1]`` (positive at ``target [B]``); mean over anchors.

    Example:
        >>> import torch
        >>> logits, target = torch.tensor([[1.0, 0.5, -0.5]]), torch.tensor([0])
        >>> round(float(hard_negative_loss(logits, target, beta=0.0, tau_plus=0.0)), 4)  # InfoNCE
        0.6041
        >>> round(float(hard_negative_loss(logits, target, beta=1.0, tau_plus=0.0)), 4)  # the harder 0.5 counts more
        0.6966
    """
    beta = check_beta(beta)
    positive, negatives, valid = split_negatives(logits, target, name="hard-negatives")
    count = valid.sum(dim=1)
    if beta == 0.0:
        log_q = torch.logsumexp(negatives, dim=1)  # N * mean(e^{s-}) = sum(e^{s-})
    else:
        log_n = torch.where(count > 0, count, torch.ones_like(count)).to(negatives.dtype).log()
        log_q = log_n + torch.logsumexp((1.0 + beta) * negatives, dim=1) - torch.logsumexp(beta * negatives, dim=1)
    log_ng = debiased_log_negatives(positive, log_q, count, tau_plus=tau_plus, min_logit=min_logit)
    return torch.nn.functional.softplus(log_ng - positive).mean()


class HardNegatives(DebiasedContrastiveLoss):
    """The hard-negative objective (Robinson et al. 2021); ``two_way`` adds the reverse direction.

    It is ``debiased`` with the negatives reweighted (``beta = 0`` gives ``debiased``), so it keeps
    that objective's parameters, attributes and :meth:`mi_lower_bound`.

    ``beta`` is the concentration on hard negatives (the paper uses 0.5 to 1 with ``tau_plus = 0.1``);
    ``tau_plus`` and ``min_logit`` are ``debiased``'s class prior and clamp.
    ``same_view_negatives = True`` gives the paper's SimCLR negatives (``2B - 2`` with ``in-batch``).

    :meth:`mi_lower_bound` is InfoNCE's ``log(K + 1) - L`` when ``tau_plus = 0``: the weights
    ``w_k`` grow with ``exp(s-_k)``, so ``N sum_k w_k exp(s-_k) >= sum_k exp(s-_k)`` (Chebyshev's
    sum inequality) and the loss is at least InfoNCE's, whose bound therefore still holds. With
    ``tau_plus > 0`` it is ``None``: the debiasing can take the loss below InfoNCE's.

    Example:
        >>> import torch
        >>> objective = HardNegatives(beta=0.5, tau_plus=0.05, min_logit=-2.0)
        >>> loss = objective(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
        >>> round(float(loss), 4), objective.mi_lower_bound(loss, 2)
        (0.1059, None)
    """

    def __init__(
        self,
        *,
        two_way: bool = True,
        beta: float = 1.0,
        tau_plus: float = 0.1,
        min_logit: float = DEFAULT_MIN_LOGIT,
        same_view_negatives: bool = False,
    ) -> None:
        beta = check_beta(beta)  # before the base class's checks: with several bad parameters, beta's is reported
        super().__init__(two_way=two_way, tau_plus=tau_plus, min_logit=min_logit,
                         same_view_negatives=same_view_negatives)
        self.beta = beta

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return hard_negative_loss(logits, target, beta=self.beta, tau_plus=self.tau_plus, min_logit=self.min_logit)

    def extra_repr(self) -> str:
        return (f"two_way={self.two_way}, beta={self.beta}, tau_plus={self.tau_plus}, "
                f"min_logit={self.min_logit:g}, same_view_negatives={self.same_view_negatives}")
