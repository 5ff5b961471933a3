"""``rince``: Robust InfoNCE (Chuang et al., "Robust Contrastive Learning against Noisy Views", CVPR 2022).

A view pair whose views share nothing (a crop of background, a mislabeled pair) is a *noisy*
positive. InfoNCE's gradient on a pair grows the worse the pair scores, so noisy positives dominate
training. RINCE (arXiv:2201.04309, eq. 3) replaces InfoNCE's ``-log`` by a power ``q`` in
``(0, 1]``, which caps that weight. With the critic's logits (temperature already applied), the
positive's ``s+`` and the ``K`` negatives' ``s-_k``::

    L = -exp(q s+) / q + ( lam (exp(s+) + sum_k exp(s-_k)) )^q / q        (mean over anchors)

- ``q -> 0`` gives InfoNCE plus ``log lam`` (``(a^q - 1) / q -> log a``): the two have the same gradients;
- ``q = 1`` gives ``(lam - 1) exp(s+) + lam sum_k exp(s-_k)``, a loss that is symmetric in the
  sense of robust classification: bounded weight on any one pair;
- ``lam`` in ``(0, 1]`` weighs the negatives' density against the positive; smaller ``lam``
  puts more weight on pulling the positive up.

With ``lam <= 1`` the loss never rises when the positive's logit rises. Unlike InfoNCE it is not
shift-invariant in the logits and can be negative; ``exp(q s)`` is computed as is, so keep logits
moderate (``|s| <= 1 / t`` with the cosine critic: at most ``e^{14.3 q}`` at ``t = 0.07``).
Computed as ``(exp(q (log lam + logsumexp(s))) - exp(q s+)) / q``. Columns set to ``-inf`` are
excluded. RINCE bounds no mutual information: ``mi_lower_bound`` is ``None``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(robust_info_nce(logits, torch.tensor([0, 1]), q=1.0, lam=0.5)), 4)  # (0.5 - 1) e^2 + 0.5 * 2
    -2.6945
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError

__all__ = ["RobustInfoNCE", "robust_info_nce"]


def _check(q: float, lam: float) -> None:
    def unit(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0

    if not unit(q):
        raise InvalidParameter("q", "must be a number in (0, 1] (-> 0: InfoNCE; 1: the symmetric loss)", q)
    if not unit(lam):
        raise InvalidParameter("lam", "must be a number in (0, 1] (the weight of the negatives' density)", lam)


def robust_info_nce(logits: Tensor, target: Tensor, *, q: float = 0.5, lam: float = 0.01) -> Tensor:
    """RINCE of ``logits [B, K+1]`` whose positive is at column ``target [B]``; mean over anchors.

    Example:
        >>> import torch
        >>> logits, target = torch.zeros(1, 4), torch.tensor([0])
        >>> round(float(robust_info_nce(logits, target, q=1.0, lam=1.0)), 4)  # -1 + 4
        3.0
        >>> round(float(robust_info_nce(logits, target, q=1e-6, lam=1.0)), 4)  # ~ InfoNCE, log 4
        1.3863
    """
    _check(q, lam)
    if logits.ndim != 2 or logits.shape[1] < 2 or target.shape != logits.shape[:1]:
        raise ShapeError(f"objectives.rince: logits must be [B, K+1] (K >= 1) and target [B], "
                         f"got {tuple(logits.shape)} and {tuple(target.shape)}")
    if logits.element_size() < 4:  # half precision (autocast): the powers in float32
        logits = logits.float()
    positive = logits.gather(1, target.long().unsqueeze(1)).squeeze(1)
    log_all = torch.logsumexp(logits, dim=1)  # the positive is finite, so this is too; -inf columns add 0
    # (a^q - b^q) / q as b^q * expm1(q (log a - log b)) / q: exact for q -> 0, where a^q - b^q cancels.
    return (torch.exp(q * positive) * torch.expm1(q * (math.log(lam) + log_all - positive)) / q).mean()


class RobustInfoNCE(nn.Module):
    """The RINCE objective; ``two_way`` scores both directions of each view pair and adds them.

    ``q`` in ``(0, 1]`` (the paper recommends 0.1 to 0.5; default 0.5) and ``lam`` in ``(0, 1]``
    (default 0.01). :meth:`mi_lower_bound` is ``None``: RINCE is not a bound on mutual information.

    Example:
        >>> import torch
        >>> objective = RobustInfoNCE(q=0.5, lam=0.01)
        >>> loss = objective(torch.tensor([[5.0, -5.0]]), torch.tensor([0]))
        >>> round(float(loss), 4), objective.mi_lower_bound(loss, 1), objective.two_way
        (-21.9284, None, True)
    """

    def __init__(self, *, two_way: bool = True, q: float = 0.5, lam: float = 0.01) -> None:
        super().__init__()
        _check(q, lam)
        self.two_way = two_way
        self.q = float(q)
        self.lam = float(lam)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return robust_info_nce(logits, target, q=self.q, lam=self.lam)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """Always ``None``: RINCE implies no bound on the views' mutual information."""

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}, q={self.q}, lam={self.lam}"
