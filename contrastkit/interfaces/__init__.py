"""The eight plugin interfaces of contrastkit, as :class:`typing.Protocol` classes.

A plugin implements one of these structurally (no subclassing needed) and registers a factory for
it (see :mod:`contrastkit.hookspecs`). The package's modules: :mod:`~contrastkit.interfaces.components`
(the eight interfaces, one per slot), :mod:`~contrastkit.interfaces.pair_logits` (what samplers hand
objectives), :mod:`~contrastkit.interfaces.capabilities` (interfaces a component may add to its
kind's) and :mod:`~contrastkit.interfaces.introspection` (``describe``, ``is_trainable``). Shapes use ``B`` (batch), ``C``/``C_i`` (channels of view
``i``), ``H, W`` (pixels), ``M`` (number of views), ``F`` (encoder features), ``D`` (embedding
size) and ``K`` (candidates per anchor).

Data flow of one training step (who calls what is in ``docs/architecture.md``)::

    Dataset -> batch {"image": [B,3,H,W], "index": [B], labels...}
      -> ViewMaker(batch, augment)            -> M views [B, C_i, H, W]   (augment: Augmentation per view)
      -> Encoder_i(view_i)                    -> features [B, F]
      -> Critic.embed(features, view=i)       -> embeddings [B, D]
      -> NegativeSampler.pair_logits(...)     -> PairLogits: logits [B, K+1], target [B]
      -> Objective(logits, target)            -> loss (scalar);  Regularizer(forward, backward) -> extra term
         or PairObjective.pair_loss(pair)     -> loss from the whole PairLogits: embeddings, positive mask, labels
      -> NegativeSampler.update(embeddings, index)   (after the step's forward, no gradient)

Example:
    >>> import torch
    >>> from contrastkit.interfaces import Encoder
    >>> class Flatten(torch.nn.Module):
    ...     feature_dim = 12
    ...     def forward(self, x):
    ...         return x.flatten(1)
    >>> isinstance(Flatten(), Encoder)
    True
"""

from __future__ import annotations

from contrastkit.interfaces.capabilities import (
    EncodedImageSource,
    LabelledBatchSource,
    LabelledObjective,
    PairObjective,
    PositiveSampler,
    PositiveSupplier,
    PredictingCritic,
)
from contrastkit.interfaces.components import (
    Augmentation,
    AugmentFn,
    Batch,
    Critic,
    Dataset,
    Encoder,
    NegativeSampler,
    Objective,
    Regularizer,
    ViewMaker,
)
from contrastkit.interfaces.introspection import describe, is_trainable
from contrastkit.interfaces.pair_logits import PairLogits

__all__ = [
    "AugmentFn", "Augmentation", "Batch", "Critic", "Dataset", "EncodedImageSource", "Encoder",
    "LabelledBatchSource", "LabelledObjective", "NegativeSampler", "Objective", "PairLogits", "PairObjective",
    "PositiveSampler", "PositiveSupplier", "PredictingCritic", "Regularizer", "ViewMaker", "describe",
    "is_trainable",
]
