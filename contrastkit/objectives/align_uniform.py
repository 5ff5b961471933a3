"""``align-uniform``: alignment and uniformity on the hypersphere (Wang & Isola 2020), a loss on embeddings.

For L2-normalised embeddings ``f(x), f(y)`` of positive pairs and ``f`` of the data::

    L_align(alpha)   = E_(x,y)~pos [ ||f(x) - f(y)||_2^alpha ]
    L_uniform(t)     = log E_(x,y)~data [ exp(-t ||f(x) - f(y)||_2^2) ]
    L = L_align + lam * (L_uniform(view 1) + L_uniform(view 2)) / 2

with the paper's defaults ``alpha = 2``, ``t = 2``, ``lam = 1``. It reads the pair's embeddings
(``pair.anchors``, ``pair.positives``), not the logits: the critic's temperature and the negative
sampler play no part. The uniformity expectation runs over the distinct pairs of the batch, as in
the paper's code (``torch.pdist``). Symmetric in the two views, so ``two_way = false`` by default.

Example:
    >>> import torch
    >>> x = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> float(align_loss(x, x))
    0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits

__all__ = ["AlignUniform", "align_loss", "uniform_loss"]


def align_loss(x: Tensor, y: Tensor, *, alpha: float = 2.0) -> Tensor:
    """``E ||x - y||^alpha`` over the rows of two ``[B, D]`` embeddings (normalised by the caller).

    Example:
        >>> import torch
        >>> round(float(align_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))), 4)  # sqrt(2)^2
        2.0
    """
    return (x - y).norm(p=2, dim=1).pow(alpha).mean()


def uniform_loss(x: Tensor, *, t: float = 2.0) -> Tensor:
    """``log E exp(-t ||x_i - x_j||^2)`` over the distinct pairs ``i < j`` of ``x [B, D]``.

    Example:
        >>> import torch
        >>> round(float(uniform_loss(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))), 4)  # -2 * 4
        -8.0
    """
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()


class AlignUniform(nn.Module):
    """Alignment + ``lam`` x uniformity of the pair's L2-normalised embeddings (Wang & Isola 2020).

    Example:
        >>> import torch
        >>> z1, z2 = torch.randn(6, 3), torch.randn(6, 3)
        >>> pair = PairLogits(logits=torch.zeros(6, 6), target=torch.arange(6), anchor_view=0, target_view=1,
        ...                   anchors=z1, positives=z2)
        >>> AlignUniform().pair_loss(pair).ndim
        0
    """

    def __init__(self, *, alpha: float = 2.0, t: float = 2.0, lam: float = 1.0, two_way: bool = False) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("t", t)):
            if isinstance(value, bool) or not value > 0:
                raise InvalidParameter(name, "must be > 0", value)
        if isinstance(lam, bool) or not lam >= 0:
            raise InvalidParameter("lam", "must be >= 0 (the weight of the uniformity term)", lam)
        self.alpha, self.t, self.lam = float(alpha), float(t), float(lam)
        self.two_way = two_way

    def pair_loss(self, pair: PairLogits) -> Tensor:
        """The loss of one view pair from ``pair.anchors`` and ``pair.positives`` ``[B, D]``."""
        if pair.anchors is None or pair.positives is None:
            raise ShapeError("align-uniform: the pair carries no embeddings (anchors, positives); it runs inside "
                             "a Pipeline, which fills them")
        x, y = (F.normalize(z.float() if z.element_size() < 4 else z, dim=1) for z in (pair.anchors, pair.positives))
        uniform = (uniform_loss(x, t=self.t) + uniform_loss(y, t=self.t)) / 2
        return align_loss(x, y, alpha=self.alpha) + self.lam * uniform

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """No mutual-information bound follows from this loss."""

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, t={self.t}, lam={self.lam}, two_way={self.two_way}"
