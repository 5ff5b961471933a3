"""``relic``: ReLIC's invariance penalty (seed 003) between the two directions of a view pair.

ReLIC asks the distribution a representation induces over the contrast set to be the same under
different augmentations. With ``p^{a}(j | x_i) = softmax_j( phi(f(x_i^a), h(x_j^{a'})) / tau )``:

    R = alpha * KL( p^{V_i}( . | x) || sg[ p^{V_j}( . | x) ] )         (averaged over anchors)

Here ``p^{V_i}`` is row ``b`` of the ``V_i -> V_j`` logits and ``p^{V_j}`` is row ``b`` of the
``V_j -> V_i`` logits: with in-batch negatives both rows range over the same samples ``j``.
``stop_gradient = true`` (``sg``, the default) treats the second distribution as a fixed target, as
ReLIC's pseudo-code does; ``symmetric = true`` averages both KL directions instead.

``target_momentum = m`` gives ``h`` ReLIC's EMA target network: the regulariser then exposes
``key_momentum``, and the :class:`~contrastkit.pipeline.Pipeline` computes the target side of every
pair (the positives, and with ``in-batch`` the candidates ``h(x_j)``) with a
:class:`~contrastkit.momentum.MomentumTarget`, an EMA copy of the encoders and critic updated after
every optimizer step, ``theta_h <- m * theta_h + (1 - m) * theta_f``. Absent (the default), ``h`` is
the online network.

Example:
    >>> import torch
    >>> from contrastkit.interfaces import PairLogits
    >>> a = PairLogits(logits=torch.tensor([[2.0, 0.0], [0.0, 2.0]]), target=torch.arange(2), anchor_view=0, target_view=1)
    >>> float(RelicKL(alpha=0.5)(a, a))
    0.0
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits

__all__ = ["RelicKL", "relic_kl"]


def relic_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """Mean over rows of ``KL(softmax(logits_p) || softmax(logits_q))``; both ``[B, K]``.

    Example:
        >>> import torch
        >>> round(float(relic_kl(torch.tensor([[0.0, 30.0]]), torch.tensor([[0.0, 0.0]]))), 4)  # ~ log 2
        0.6931
    """
    log_p = F.log_softmax(logits_p, dim=1)
    log_q = F.log_softmax(logits_q, dim=1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")


class RelicKL(nn.Module):
    """ReLIC's KL invariance regulariser, weighted by ``alpha``.

    Example:
        >>> RelicKL(alpha=1.0).alpha
        1.0
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        stop_gradient: bool = True,
        symmetric: bool = False,
        target_momentum: float | None = None,
    ) -> None:
        super().__init__()
        if alpha < 0:
            raise InvalidParameter("alpha", "must be >= 0", alpha)
        if target_momentum is not None and (isinstance(target_momentum, bool) or not 0.0 <= target_momentum <= 1.0):
            raise InvalidParameter("target_momentum", "must be in [0, 1]", target_momentum)
        #: The EMA target network's momentum the pipeline reads (``None``: no target network).
        self.key_momentum = None if target_momentum is None else float(target_momentum)
        self.alpha = float(alpha)
        self.stop_gradient = stop_gradient
        self.symmetric = symmetric

    def forward(self, forward: PairLogits, backward: PairLogits) -> Tensor:
        """``alpha * KL`` between the row distributions of the two directions."""
        # Shapes only: comparing the targets' values would sync the device every step.
        if forward.logits.shape != backward.logits.shape:
            raise ShapeError(
                "relic: the two directions of a view pair must score the same candidates "
                "(use negatives = 'in-batch')"
            )
        p, q = forward.logits, backward.logits
        target_q = q.detach() if self.stop_gradient else q
        kl = relic_kl(p, target_q)
        if self.symmetric:
            target_p = p.detach() if self.stop_gradient else p
            kl = 0.5 * (kl + relic_kl(q, target_p))
        return self.alpha * kl
