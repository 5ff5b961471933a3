"""``MomentumTarget``: an exponential-moving-average (EMA) copy of the pipeline's encoders and critic.

MoCo (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", 2020, Eq. 2)
computes its keys with a *key encoder* that is not trained by gradient descent but follows the
query encoder slowly::

    theta_k <- m * theta_k + (1 - m) * theta_q            (m = 0.999 in MoCo)

ReLIC and BYOL use the same construction as a "target network". :class:`MomentumTarget` holds deep
copies of the pipeline's encoders (``encoders``, with the pipeline's view-to-encoder mapping) and of
its critic (``critic``, whose projection heads are part of the key path); none of their parameters
requires grad, so the optimizer never sees them and no gradient reaches them.
:meth:`MomentumTarget.update` applies the EMA in place, without autograd, as one fused
``torch._foreach_mul_`` / ``torch._foreach_add_`` over all parameters; buffers (batch-norm running
statistics and counters) are copied from the online modules, so the key path evaluates with the
online network's statistics.

A component asks for a momentum target by exposing ``key_momentum: float`` (the ``queue`` sampler
does, and ``relic`` with ``target_momentum``); the :class:`~contrastkit.pipeline.Pipeline` then
builds one as its ``momentum_target`` submodule, so it is part of ``pipeline.state_dict()``: saved
in checkpoints, restored on ``--resume`` (resumed runs stay bit-exact) and moved by ``.to(device)``.
The Trainer calls :meth:`~contrastkit.pipeline.Pipeline.update_momentum` after every optimizer step.

Example:
    >>> import torch
    >>> online = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
    >>> critic = torch.nn.Identity()
    >>> target = MomentumTarget(online, critic, view_encoder=[0, 0], momentum=0.5)
    >>> any(p.requires_grad for p in target.parameters())
    False
    >>> with torch.no_grad():
    ...     _ = online[0].weight.add_(2.0)
    >>> before = target.encoders[0].weight.clone()
    >>> target.update(online, critic)
    >>> torch.allclose(target.encoders[0].weight, 0.5 * before + 0.5 * online[0].weight)
    True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PredictingCritic

__all__ = ["MomentumTarget", "ema_"]


@torch.no_grad()
def ema_(target: Sequence[Tensor], online: Sequence[Tensor], momentum: float) -> None:
    """In place: ``target <- momentum * target + (1 - momentum) * online`` for every pair of tensors.

    Example:
        >>> import torch
        >>> t, o = [torch.tensor([1.0])], [torch.tensor([3.0])]
        >>> ema_(t, o, 0.75); t[0].tolist()
        [1.5]
    """
    target, online = list(target), list(online)
    if len(target) != len(online):
        raise ShapeError(f"momentum update: {len(target)} target tensors for {len(online)} online tensors")
    if not target:
        return
    torch._foreach_mul_(target, momentum)
    torch._foreach_add_(target, online, alpha=1.0 - momentum)


class MomentumTarget(nn.Module):
    """EMA copies of ``encoders`` and ``critic``: the key (target) path of MoCo, ReLIC or BYOL.

    ``view_encoder[i]`` is the index in ``encoders`` of view ``i``'s encoder (as in the pipeline).
    ``momentum`` is ``m`` in ``theta_k <- m * theta_k + (1 - m) * theta_q``, in ``[0, 1]``: ``0``
    copies the online network after every step, ``1`` freezes the initial copy.

    Example:
        >>> import torch
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> critic = CosineCritic(feature_dims=(2, 2), head="none")
        >>> target = MomentumTarget(torch.nn.ModuleList([torch.nn.Linear(3, 2)]), critic,
        ...                         view_encoder=[0, 0], momentum=0.99)
        >>> [k.shape for k in target.embed([torch.rand(4, 3), torch.rand(4, 3)])]
        [torch.Size([4, 2]), torch.Size([4, 2])]
    """

    def __init__(self, encoders: nn.ModuleList, critic: Any, *, view_encoder: Sequence[int], momentum: float) -> None:
        super().__init__()
        if isinstance(momentum, bool) or not 0.0 <= float(momentum) <= 1.0:
            raise InvalidParameter("momentum", "must be in [0, 1]", momentum)
        self.momentum = float(momentum)
        self.view_encoder = list(view_encoder)
        self.encoders = copy.deepcopy(encoders)
        self.critic = copy.deepcopy(critic)  # a submodule when the critic is an nn.Module
        self.requires_grad_(False)

    @torch.no_grad()
    def embed(self, views: Sequence[Tensor]) -> list[Tensor]:
        """Key embeddings ``[B, D]`` of every view, through the EMA encoders and critic, without gradient."""
        # A predicting critic's keys skip its predictor (MoCo v3: k = proj_m(enc_m(x))).
        embed = self.critic.embed_target if isinstance(self.critic, PredictingCritic) else self.critic.embed
        return [embed(self.encoders[self.view_encoder[i]](view), view=i) for i, view in enumerate(views)]

    @torch.no_grad()
    def update(self, encoders: nn.Module, critic: Any) -> None:
        """One EMA step towards the online ``encoders`` and ``critic``; buffers are copied."""
        pairs: list[tuple[nn.Module, nn.Module]] = [(self.encoders, encoders)]
        if isinstance(self.critic, nn.Module) and isinstance(critic, nn.Module):
            pairs.append((self.critic, critic))
        target_params: list[Tensor] = []
        online_params: list[Tensor] = []
        for target, online in pairs:
            t, o = list(target.parameters()), list(online.parameters())
            if len(t) != len(o) or any(a.shape != b.shape for a, b in zip(t, o)):
                raise ShapeError("momentum update: the online modules no longer match their EMA copies")
            target_params += t
            online_params += [p.detach() for p in o]
            for tb, ob in zip(target.buffers(), online.buffers()):
                tb.copy_(ob)
        ema_(target_params, online_params, self.momentum)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"
