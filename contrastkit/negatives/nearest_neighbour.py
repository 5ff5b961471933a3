"""``nnclr``: nearest-neighbour positives from a support queue (Dwibedi et al. 2021, NNCLR).

NNCLR ("With a Little Help from My Friends: Nearest-Neighbor Contrastive Learning of Visual
Representations", Dwibedi, Aytar, Tompson, Sermanet & Zisserman, ICCV 2021, eq. 2) replaces each
anchor by its nearest neighbour in a support set ``Q`` of earlier embeddings, so the positive pair
is two *different* images that the model already finds alike::

    NN(z, Q) = argmin_{q in Q} ||z - q||_2          (cosine: argmax_q z . q on unit vectors)
    logits[b] = [ s(NN(z_i[b]), z_j[0]), ..., s(NN(z_i[b]), z_j[B-1]) ],   target[b] = b

with ``s = critic.score``: the sampler supplies the positives, not only the negatives. The nearest
neighbour carries no gradient (it is a stored vector), so the gradient reaches the encoders through
the target side ``z_j``; the two-way sum (``objective.two_way``) gives both views' encoders one, as
the paper's symmetric loss does. The paper's prediction head is the critic's head here.

The support set is a FIFO queue of ``size`` embeddings (the paper: 98,304) of view 1, a registered
buffer ``support [size, D]`` with its write position ``ptr`` (checkpointed, so ``--resume`` is exact),
starting as random unit vectors as MoCo's queue does; :meth:`update` enqueues each step's view-1
embeddings (all ranks' under ``torch.distributed``). Negatives are the batch's other target-side
embeddings (``K = B - 1``); under ``torch.distributed`` they are gathered from every rank, as
``in-batch`` does.

Example:
    >>> import torch
    >>> from contrastkit.critics.cosine import CosineCritic
    >>> critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=0.1)
    >>> sampler = NearestNeighbourPositives(num_views=2, dataset_size=50, embedding_dim=4, size=8)
    >>> z1, z2 = critic.embed(torch.randn(3, 4), 0), critic.embed(torch.randn(3, 4), 1)
    >>> pair = sampler.pair_logits(critic, z1, z2, index=torch.arange(3), anchor_view=0, target_view=1)
    >>> pair.logits.shape, pair.target.tolist(), pair.num_negatives
    (torch.Size([3, 3]), [0, 1, 2], 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.errors import InvalidParameter
from contrastkit.interfaces import Critic, PairLogits
from contrastkit.negatives._checks import check_pair_inputs, gathered_update_rows
from contrastkit.negatives.queue import fifo_slots

__all__ = ["NearestNeighbourPositives", "nearest_neighbours"]


def nearest_neighbours(queries: Tensor, support: Tensor) -> Tensor:
    """For each row of ``queries [B, D]``, the row of ``support [Q, D]`` with the highest cosine similarity.

    Example:
        >>> import torch
        >>> support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> nearest_neighbours(torch.tensor([[0.1, 0.9], [-2.0, 0.1]]), support).tolist()
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    similarity = F.normalize(queries, dim=1) @ F.normalize(support, dim=1).T
    return support[similarity.argmax(dim=1)]


class NearestNeighbourPositives(nn.Module):
    """NNCLR's sampler: each anchor replaced by its nearest neighbour in a FIFO support queue.

    Example:
        >>> sampler = NearestNeighbourPositives(num_views=2, dataset_size=10, embedding_dim=4, size=32)
        >>> tuple(sampler.support.shape), int(sampler.ptr)
        ((32, 4), 0)
    """

    support: Tensor
    ptr: Tensor

    def __init__(self, *, num_views: int, dataset_size: int, embedding_dim: int, size: int = 16384) -> None:
        super().__init__()
        del dataset_size  # the support queue's size does not depend on the dataset
        if num_views < 2:
            raise InvalidParameter("num_views", "must be >= 2 (NNCLR contrasts two views)", num_views)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidParameter("size", "must be an int >= 1 (the support queue's length)", size)
        self.num_views = int(num_views)
        self.embedding_dim = int(embedding_dim)
        self.size = int(size)
        self.register_buffer("support", F.normalize(torch.randn(self.size, self.embedding_dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64))

    def pair_logits(self, critic: Critic, anchors: Tensor, positives: Tensor, *, index: Tensor, anchor_view: int,
                    target_view: int) -> PairLogits:
        """``[B, W*B]`` logits of each anchor's nearest neighbour against the (global) batch's targets."""
        check_pair_inputs("nnclr", "support", self.embedding_dim, anchors, positives, index, anchor_view, target_view)
        nearest = self.supplied_anchors(anchors)
        gather = distributed.world_size() > 1
        offset = distributed.rank() * anchors.shape[0] if gather else 0
        candidates = distributed.gather_with_grad(positives) if gather else positives
        logits = critic.score(nearest, candidates)
        target = torch.arange(offset, offset + anchors.shape[0], device=anchors.device)
        return PairLogits(logits=logits, target=target, anchor_view=anchor_view, target_view=target_view)

    @torch.no_grad()
    def supplied_anchors(self, anchors: Tensor) -> Tensor:
        """Each anchor's nearest neighbour in the support queue (no gradient): the positive side's query."""
        return nearest_neighbours(anchors.detach(), self.support.to(anchors.dtype))

    @torch.no_grad()
    def update(self, embeddings: Sequence[Tensor], index: Tensor) -> None:
        """Enqueue view 1's embeddings of the step (every rank's under DDP), overwriting the oldest."""
        rows, _ = gathered_update_rows("nnclr", embeddings, index, num_views=self.num_views,
                                       embedding_dim=self.embedding_dim, store=self.support[None])
        positions, skip = fifo_slots(self.ptr, rows.shape[1], self.size)
        # Out of place: this step's nearest neighbours were read from the old support set.
        self.support = self.support.index_copy(0, positions, rows[0, skip:])
        self.ptr = (self.ptr + rows.shape[1]) % self.size

    def extra_repr(self) -> str:
        return f"size={self.size}, embedding_dim={self.embedding_dim}"
