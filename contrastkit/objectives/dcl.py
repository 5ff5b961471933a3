"""``dcl``: Decoupled Contrastive Learning (Yeh et al., ECCV 2022), the positive out of the denominator.

Yeh, Hong, Hsu, Liu, Chen & LeCun, "Decoupled Contrastive Learning" (arXiv:2110.06848). InfoNCE
keeps the positive in its own denominator, which couples the gradient of the positive to how easy
the negatives are (the "negative-positive coupling" that makes InfoNCE need large batches). DCL
removes the positive from the denominator. The paper's eq. 6, for anchor ``i`` with positive
``z_i^(2)`` and negatives ``z_j^(l)``, ``j != i``::

    L_DC,i = -<z_i^(1), z_i^(2)> / tau + log sum_{l in {1,2}, j != i} exp(<z_i^(1), z_j^(l)> / tau)

In contrastkit's :class:`~contrastkit.interfaces.PairLogits` layout (``logits [B, K+1]``, the
positive ``s+`` at column ``target[b]``, the ``K`` negatives ``s-_k`` in the other columns, the
critic's temperature already applied)::

    L = mean_b ( -w_b s+ + log sum_k exp(s-_k) )

computed as ``logsumexp`` over the row with the positive column set to ``-inf``, minus the
positive's logit: one vectorised pass. ``w_b = 1`` is DCL. With ``sigma`` set it is the paper's
DCLW: the negative von Mises-Fisher weight of eq. 7,
``w_b = 2 - exp(<z_b^(1), z_b^(2)> / sigma) / mean_i exp(<z_i^(1), z_i^(2)> / sigma)``
``= 2 - B softmax_b(<z^(1), z^(2)> / sigma)``, computed from the pair's L2-normalised embeddings
(``pair.anchors``, ``pair.positives``) and treated as a constant (no gradient), as lightly's
``DCLWLoss`` does. ``sigma`` is on cosines, as in the paper (``sigma = 0.5``): the critic's
temperature does not enter it.

The paper's negatives are SimCLR's ``2B - 2`` (the other view's and the anchor view's other
samples): ``same_view_negatives = true`` with ``in-batch``. Columns that are ``-inf`` (excluded
candidates, e.g. empty memory-bank slots) contribute nothing. An anchor left with no finite
negative has no DCL term; it is dropped from the mean (its gradient is zero, not NaN), and a batch
with no usable anchor gives a loss of 0.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(decoupled_contrastive_loss(logits, torch.tensor([0, 1]))), 4)  # -2 + log 2
    -1.3069
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits

__all__ = ["DecoupledContrastiveLoss", "decoupled_contrastive_loss", "von_mises_fisher_weights"]


def _check_shapes(logits: Tensor, target: Tensor) -> None:
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ShapeError(f"objectives.dcl: logits must be [B, K+1] with K >= 1, got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ShapeError(f"objectives.dcl: target must be [B] = [{logits.shape[0]}], got {tuple(target.shape)}")


def _check_sigma(sigma: float | None) -> None:
    if sigma is None:
        return
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
        raise InvalidParameter("sigma", "must be a finite number > 0 (the paper's DCLW uses 0.5), or omitted", sigma)


def von_mises_fisher_weights(anchors: Tensor, positives: Tensor, *, sigma: float) -> Tensor:
    """DCLW's weights ``2 - B softmax_b(cos(anchors_b, positives_b) / sigma)``, ``[B]``, without gradient.

    The embeddings ``[B, D]`` are L2-normalised here. The weights average to 1 over the batch; a
    pair whose views agree more than the batch's typical pair gets a weight below 1 (below 0 when
    its share of the softmax exceeds ``2 / B``).

    Example:
        >>> import torch
        >>> z = torch.eye(3)
        >>> von_mises_fisher_weights(z, z, sigma=0.5).tolist()  # equal agreement: every weight 1
        [1.0, 1.0, 1.0]
        >>> [round(w, 4) for w in von_mises_fisher_weights(z, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, -1]]),
        ...                                                   sigma=0.5).tolist()]
        [0.5136, 0.5136, 1.9728]
    """
    _check_sigma(sigma)
    if anchors.ndim != 2 or anchors.shape != positives.shape:
        raise ShapeError(f"objectives.dcl: anchors and positives must both be [B, D], got "
                         f"{tuple(anchors.shape)} and {tuple(positives.shape)}")
    with torch.no_grad():
        a = F.normalize(anchors.detach().float() if anchors.element_size() < 4 else anchors.detach(), dim=1)
        p = F.normalize(positives.detach().to(a.dtype), dim=1)
        agreement = (a * p).sum(dim=1) / sigma
        return 2.0 - anchors.shape[0] * torch.softmax(agreement, dim=0)


def decoupled_contrastive_loss(logits: Tensor, target: Tensor, *, positive_weights: Tensor | None = None) -> Tensor:
    """DCL of ``logits [B, K+1]`` whose positive is at column ``target [B]``: ``mean(-w s+ + logsumexp(s-))``.

    ``positive_weights [B]`` are DCLW's ``w_b`` (see :func:`von_mises_fisher_weights`); ``None``
    means ``w_b = 1``, DCL. Unlike InfoNCE the loss can be negative (it is not a cross-entropy): it
    falls without bound as the positive's logit rises above the negatives'.

    Example:
        >>> import torch
        >>> logits = torch.zeros(3, 4)  # every score equal: -0 + log 3 for each anchor
        >>> round(float(decoupled_contrastive_loss(logits, torch.zeros(3, dtype=torch.long))), 4)
        1.0986
        >>> logits[:, 3] = float("-inf")  # an excluded column: -0 + log 2
        >>> round(float(decoupled_contrastive_loss(logits, torch.zeros(3, dtype=torch.long))), 4)
        0.6931
        >>> one = torch.tensor([[1.0, 0.0]])
        >>> float(decoupled_contrastive_loss(one, torch.tensor([0]), positive_weights=torch.tensor([0.5])))
        -0.5
    """
    _check_shapes(logits, target)
    if logits.element_size() < 4:  # half precision (autocast): logsumexp in float32
        logits = logits.float()
    column = target.long().unsqueeze(1)
    positive = logits.gather(1, column).squeeze(1)  # [B]
    if positive_weights is not None:
        if positive_weights.shape != positive.shape:
            raise ShapeError(f"objectives.dcl: positive_weights must be [B] = [{logits.shape[0]}], "
                             f"got {tuple(positive_weights.shape)}")
        positive = positive * positive_weights.to(positive.dtype)
    negatives = logits.scatter(1, column, float("-inf"))  # [B, K+1], positive excluded (out of place)
    usable = (negatives > float("-inf")).any(dim=1)  # [B]: anchors with at least one negative
    # Rows with no negative would give logsumexp = -inf and NaN gradients: compute them on zeros
    # and drop them with `where`, whose backward masks instead of multiplying.
    negatives = torch.where(usable.unsqueeze(1), negatives, torch.zeros_like(negatives))
    per_anchor = torch.logsumexp(negatives, dim=1) - positive
    per_anchor = torch.where(usable, per_anchor, torch.zeros_like(per_anchor))
    return per_anchor.sum() / usable.sum().clamp_min(1).to(per_anchor.dtype)


class DecoupledContrastiveLoss(nn.Module):
    """The DCL objective (DCLW with ``sigma``); ``two_way`` scores both directions of each view pair and adds them.

    ``same_view_negatives = True`` gives the paper's SimCLR negatives (the pipeline asks ``in-batch``
    for the anchor view's other samples too). ``sigma`` (DCLW) needs the pair's embeddings, so the
    pipeline calls :meth:`pair_loss`; :meth:`forward` (logits and target only) is plain DCL.

    :meth:`mi_lower_bound` returns ``None``: DCL is not a bound on mutual information. InfoNCE's
    ``I(V1; V2) >= log(K + 1) - L`` holds because InfoNCE is the cross-entropy of picking the
    positive among ``K + 1`` candidates, so ``L >= 0`` and ``log(K + 1) - L <= log(K + 1)``.
    Without the positive in the denominator, DCL is no such log-likelihood: it goes to ``-inf`` as
    the positive's score grows, and ``log(K + 1) - L`` would report arbitrarily large "bounds".
    contrastkit then simply logs no ``mi_lower_bound/*`` metric for the run.

    Example:
        >>> import torch
        >>> objective = DecoupledContrastiveLoss(two_way=False)
        >>> loss = objective(torch.tensor([[5.0, -5.0]]), torch.tensor([0]))
        >>> float(loss), objective.mi_lower_bound(loss, 1), objective.two_way
        (-10.0, None, False)
        >>> z = torch.eye(2)
        >>> pair = PairLogits(logits=torch.tensor([[5.0, -5.0], [-5.0, 5.0]]), target=torch.arange(2),
        ...                   anchor_view=0, target_view=1, anchors=z, positives=z)
        >>> float(DecoupledContrastiveLoss(sigma=0.5).pair_loss(pair))  # equal agreement: weights 1
        -10.0
    """

    def __init__(self, *, two_way: bool = True, sigma: float | None = None, same_view_negatives: bool = False) -> None:
        super().__init__()
        _check_sigma(sigma)
        self.two_way = two_way
        #: DCLW's von Mises-Fisher scale on cosines; ``None``: plain DCL (every weight 1).
        self.sigma = None if sigma is None else float(sigma)
        #: Read by the pipeline: pass ``same_view=True`` to the sampler's ``pair_logits`` (SimCLR's 2B - 2).
        self.same_view_negatives = same_view_negatives

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Plain DCL for one direction: ``logits [B, K+1]``, ``target [B]`` (DCLW needs :meth:`pair_loss`)."""
        if self.sigma is not None:
            raise ValueError("objectives.dcl: sigma (DCLW) weighs each pair by its embeddings' agreement; "
                             "call pair_loss(PairLogits(..., anchors=..., positives=...)) instead")
        return decoupled_contrastive_loss(logits, target)

    def pair_loss(self, pair: PairLogits) -> Tensor:
        """DCL, or DCLW from ``pair.anchors`` and ``pair.positives`` when ``sigma`` is set."""
        if self.sigma is None:
            return decoupled_contrastive_loss(pair.logits, pair.target)
        if pair.anchors is None or pair.positives is None:
            raise ValueError("objectives.dcl: sigma (DCLW) needs the pair's embeddings (pair.anchors, pair.positives)")
        weights = von_mises_fisher_weights(pair.anchors, pair.positives, sigma=self.sigma)
        return decoupled_contrastive_loss(pair.logits, pair.target, positive_weights=weights)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """Always ``None``: DCL implies no bound on the views' mutual information (see the class doc)."""

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}, sigma={self.sigma}, same_view_negatives={self.same_view_negatives}"
