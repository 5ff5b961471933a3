"""``cosine``: CMC's critic ``h(v1, v2) = exp(cos(z1, z2) / tau)``, as logits ``cos / tau``.

Features pass through an optional projection head per view (``none``, ``linear`` or a two-layer
``mlp`` with batch norm) and are L2-normalised, so scores are cosine similarities divided by the
temperature ``tau``.

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

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError

__all__ = ["CosineCritic", "cosine_logits", "projection_head"]


def cosine_logits(anchors: Tensor, candidates: Tensor, temperature: float) -> Tensor:
    """Scores of unit-norm ``anchors [B, D]`` against ``candidates [K, D]`` or ``[B, K, D]`` -> ``[B, K]``.

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


def projection_head(kind: Literal["none", "linear", "mlp"], in_dim: int, out_dim: int) -> nn.Module:
    """A projection head: identity, one linear layer, or linear -> BN -> ReLU -> linear.

    Example:
        >>> projection_head("mlp", 16, 4)(__import__("torch").rand(3, 16)).shape
        torch.Size([3, 4])
    """
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(
        nn.Linear(in_dim, in_dim, bias=False),
        nn.BatchNorm1d(in_dim),
        nn.ReLU(inplace=True),
        nn.Linear(in_dim, out_dim),
    )


class CosineCritic(nn.Module):
    """Cosine-similarity critic with a fixed temperature and one projection head per view.

    ``head = "none"`` uses the features themselves (all views must then have the same ``F``).

    Example:
        >>> critic = CosineCritic(feature_dims=(32, 32))
        >>> critic.embedding_dim, critic.temperature
        (128, 0.07)
    """

    def __init__(
        self,
        *,
        feature_dims: tuple[int, ...],
        head: Literal["none", "linear", "mlp"] = "linear",
        embedding_dim: int = 128,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise InvalidParameter("temperature", "must be > 0", temperature)
        if embedding_dim < 1:
            raise InvalidParameter("embedding_dim", "must be >= 1", embedding_dim)
        if head == "none":
            if len(set(feature_dims)) != 1:
                raise InvalidParameter(
                    "head", "'none' needs every view's encoder to have the same feature size", head
                )
            embedding_dim = feature_dims[0]
        self.heads = nn.ModuleList(projection_head(head, f, embedding_dim) for f in feature_dims)
        self.head = head
        self.embedding_dim = embedding_dim
        self.temperature = float(temperature)

    def embed(self, features: Tensor, view: int) -> Tensor:
        """``[B, F_view] -> [B, D]``, unit norm."""
        return F.normalize(self.heads[view](features), dim=1)

    def score(self, anchors: Tensor, candidates: Tensor) -> Tensor:
        """``cos / tau`` of ``anchors [B, D]`` against ``[K, D]`` or ``[B, K, D]`` candidates -> ``[B, K]``."""
        return cosine_logits(anchors, candidates, self.temperature)

    def extra_repr(self) -> str:
        return f"head={self.head}, embedding_dim={self.embedding_dim}, temperature={self.temperature}"
