"""``bilinear``: a learned bilinear critic ``s(z1, z2) = z1^T W z2 / tau``.

The log-bilinear critic of CPC (van den Oord et al. 2018, "Representation Learning with
Contrastive Predictive Coding", eq. 3: ``f(x, c) = exp(z^T W c)``) between two views' embeddings.
Each view's features pass through a projection head (``none``, ``linear`` or an ``mlp`` with batch
norm, one per view or one shared; see :mod:`contrastkit.critics.heads`) and, with ``normalize``
(the default), are L2-normalised::

    s(z_a, z_c) = z_a^T W z_c / tau        W: a learned [D, D] matrix

``W`` is initialised to the identity, so with ``normalize = true`` the critic starts as the
``cosine`` critic at the same temperature and learns from there which directions of the two
embeddings should agree. With ``normalize = false`` and ``temperature = 1`` it is CPC's critic.

The score is anchor-first: ``score(anchors, candidates)`` is ``anchors^T W candidates``. The
reverse direction of a two-way objective (anchors from the other view) therefore scores the same
pair of views with ``W^T``. ``W`` is a 2-D weight, so the optimizer's weight decay pulls it towards
0 (not towards the identity), which lowers every score's scale.

Example:
    >>> import torch
    >>> critic = BilinearCritic(feature_dims=(16, 16), head="linear", embedding_dim=8, temperature=0.5)
    >>> z1, z2 = critic.embed(torch.rand(5, 16), view=0), critic.embed(torch.rand(5, 16), view=1)
    >>> critic.score(z1, z2).shape, critic.weight.shape
    (torch.Size([5, 5]), torch.Size([8, 8]))
    >>> bool(torch.allclose(critic.score(z1, z1).diagonal(), torch.full((5,), 2.0)))  # W = I: cos / tau
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.critics.cosine import check_temperature
from contrastkit.critics.heads import HeadKind, ProjectionHeads
from contrastkit.errors import ShapeError

__all__ = ["BilinearCritic", "bilinear_logits"]


def bilinear_logits(anchors: Tensor, candidates: Tensor, weight: Tensor, temperature: float) -> Tensor:
    """``anchors [B, D]^T W candidates / tau`` for ``candidates [K, D]`` or ``[B, K, D]`` -> ``[B, K]``.

    ``anchors @ W`` (``[B, D]``) is formed first, so nothing larger than the candidates is built.

    Example:
        >>> import torch
        >>> w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> bilinear_logits(torch.eye(2), torch.eye(2), w, 0.5).tolist()
        [[0.0, 2.0], [2.0, 0.0]]
    """
    if candidates.ndim not in (2, 3):
        raise ShapeError(f"bilinear critic: candidates must be [K, D] or [B, K, D], got {tuple(candidates.shape)}")
    projected = anchors @ weight  # [B, D]
    if candidates.ndim == 2:
        return projected @ candidates.T / temperature
    return torch.einsum("bd,bkd->bk", projected, candidates) / temperature


class BilinearCritic(nn.Module):
    """Bilinear critic ``z_a^T W z_c / tau`` with a learned ``W`` ``[D, D]`` (initialised to the identity).

    ``head``, ``embedding_dim``, ``hidden`` and ``shared_head`` choose the projection heads as for
    the ``cosine`` critic; ``normalize`` L2-normalises the embeddings; ``temperature`` is a fixed
    ``tau`` (the scale of ``W`` is learned, which plays the part of a learned temperature).

    Example:
        >>> critic = BilinearCritic(feature_dims=(32, 24))
        >>> critic.embedding_dim, critic.temperature, critic.normalize
        (128, 0.07, True)
    """

    def __init__(
        self,
        *,
        feature_dims: tuple[int, ...],
        head: HeadKind = "linear",
        embedding_dim: int = 128,
        temperature: float = 0.07,
        normalize: bool = True,
        hidden: list[int] | None = None,
        shared_head: bool = False,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.heads = ProjectionHeads(head, feature_dims, embedding_dim, hidden=hidden, shared=shared_head)
        self.head = head
        self.embedding_dim = self.heads.embedding_dim
        self.normalize = bool(normalize)
        self.weight = nn.Parameter(torch.eye(self.embedding_dim))

    def embed(self, features: Tensor, view: int) -> Tensor:
        """``[B, F_view] -> [B, D]`` through view ``view``'s head; unit norm with ``normalize``."""
        z = self.heads[view](features)
        return F.normalize(z, dim=1) if self.normalize else z

    def score(self, anchors: Tensor, candidates: Tensor) -> Tensor:
        """``anchors^T W candidates / tau`` for ``[K, D]`` or ``[B, K, D]`` candidates -> ``[B, K]``."""
        return bilinear_logits(anchors, candidates, self.weight, self.temperature)

    def extra_repr(self) -> str:
        return (
            f"head={self.head}, embedding_dim={self.embedding_dim}, temperature={self.temperature:g}, "
            f"normalize={self.normalize}"
        )
