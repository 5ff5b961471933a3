"""Interfaces a component may add to its kind's: richer objectives, samplers, critics, view makers, datasets.

The Pipeline and the Trainer test ``isinstance(component, Capability)`` and then use it; a component
without one gets its kind's plain behaviour.

Example:
    >>> from contrastkit.objectives.supcon import SupCon
    >>> isinstance(SupCon(label="digit"), LabelledObjective), isinstance(SupCon(label="digit"), PairObjective)
    (True, True)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from contrastkit.interfaces.pair_logits import PairLogits

__all__ = [
    "EncodedImageSource",
    "LabelledBatchSource",
    "LabelledObjective",
    "PairObjective",
    "PositiveSampler",
    "PositiveSupplier",
    "PredictingCritic",
]


@runtime_checkable
class PairObjective(Protocol):
    """An objective that reads the whole :class:`PairLogits`: embeddings, several positives, labels.

    ``pair_loss(pair) -> []`` replaces ``Objective(logits, target)``: the pipeline calls it for
    every view pair (both directions when ``two_way``) with the pair's context filled in. Losses on
    embeddings (alignment + uniformity) read ``pair.anchors`` and ``pair.positives``; losses with
    several positives per row (SupCon) read ``pair.positives_of_rows()``. ``mi_lower_bound`` and
    ``two_way`` mean what they mean for :class:`Objective`. Single-positive objectives need none of this.

    Example:
        >>> import torch
        >>> class MeanPositive(torch.nn.Module):  # a toy: minus the mean positive logit
        ...     two_way = True
        ...     def pair_loss(self, pair):
        ...         mask = pair.positives_of_rows()
        ...         return -(pair.logits * mask).sum() / mask.sum()
        ...     def mi_lower_bound(self, loss, num_negatives):
        ...         return None
        >>> pair = PairLogits(logits=torch.eye(3), target=torch.arange(3), anchor_view=0, target_view=1)
        >>> isinstance(MeanPositive(), PairObjective), float(MeanPositive().pair_loss(pair))
        (True, -1.0)
    """

    two_way: bool

    def pair_loss(self, pair: PairLogits) -> Tensor: ...

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor | None: ...


@runtime_checkable
class LabelledObjective(Protocol):
    """An objective whose positives are the samples sharing a label: ``label`` names the batch entry.

    With ``label`` set (e.g. ``"digit"``), the pipeline passes ``pair.labels`` and asks the
    negative sampler (a :class:`PositiveSampler`) for ``pair.positive_mask``; ``None`` keeps one
    positive per row (the unsupervised case). The label must be one of the dataset's ``label_keys``.

    Example:
        >>> class Supervised:
        ...     label = "digit"
        >>> isinstance(Supervised(), LabelledObjective)
        True
    """

    label: str | None


@runtime_checkable
class PositiveSampler(Protocol):
    """A negative sampler that can also say which candidates are positives: ``positive_mask``.

    ``positive_mask(pair, labels [B]) -> [B, K+1]`` bool marks every candidate column sharing the
    anchor's label (and always the row's ``target``), in the sampler's own column layout. Samplers
    that bring positives of their own (a support set for nearest neighbours) return them here too.

    Example:
        >>> import torch
        >>> from contrastkit.negatives.in_batch import InBatchNegatives
        >>> sampler = InBatchNegatives(num_views=2, dataset_size=4, embedding_dim=2)
        >>> pair = PairLogits(logits=torch.zeros(3, 3), target=torch.arange(3), anchor_view=0, target_view=1)
        >>> isinstance(sampler, PositiveSampler), sampler.positive_mask(pair, torch.tensor([0, 1, 0])).int().tolist()
        (True, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    """

    def positive_mask(self, pair: PairLogits, labels: Tensor) -> Tensor: ...


@runtime_checkable
class PredictingCritic(Protocol):
    """A critic with a prediction head on the online side only (MoCo v3, BYOL): targets skip it.

    ``embed`` gives the anchors' embeddings (projection, then predictor); ``embed_target`` the
    target side's (projection only). With a momentum encoder the EMA copy's ``embed_target`` makes
    the keys; without one the pipeline takes the online ``embed_target``. ``predictor`` is the
    head (``None``: no predictor, both are the same and the pipeline skips the second pass).

    Example:
        >>> import torch
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> critic = CosineCritic(feature_dims=(8, 8), head="mlp", embedding_dim=4, predictor=[16])
        >>> f = torch.randn(3, 8)
        >>> isinstance(critic, PredictingCritic), critic.embed(f, 0).shape == critic.embed_target(f, 0).shape
        (True, True)
    """

    predictor: Any

    def embed(self, features: Tensor, view: int) -> Tensor: ...

    def embed_target(self, features: Tensor, view: int) -> Tensor: ...


@runtime_checkable
class PositiveSupplier(Protocol):
    """A negative sampler that supplies the positive itself: each anchor's stand-in on the positive side.

    ``supplied_anchors(anchors [B, D]) -> [B, D]`` (no gradient) replaces the anchors before they are
    scored, so the target column holds ``score(supplied_anchors(z_i), z_j)``, not ``score(z_i, z_j)``:
    NNCLR's nearest neighbours from a support set (``nnclr``). The contract kit checks that column.

    Example:
        >>> import torch
        >>> from contrastkit.negatives.nearest_neighbour import NearestNeighbourPositives
        >>> sampler = NearestNeighbourPositives(num_views=2, dataset_size=4, embedding_dim=2, size=3)
        >>> isinstance(sampler, PositiveSupplier), tuple(sampler.supplied_anchors(torch.randn(5, 2)).shape)
        (True, (5, 2))
    """

    def supplied_anchors(self, anchors: Tensor) -> Tensor: ...


@runtime_checkable
class LabelledBatchSource(Protocol):
    """A view maker that trains on whole labelled batches alternating with unlabelled ones (InfoMin).

    ``labelled_batch_indices(dataset_size) -> Tensor | None``: the dataset indices whose labels it
    uses, or ``None`` for ordinary shuffled batches (e.g. once frozen). Given indices, the trainer
    draws its batches from :class:`~contrastkit.training.samplers.AlternatingBatchSampler`: a batch of them,
    then a batch of the other samples, in turn.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10,
        ...                          labelled_fraction=0.5, labelled_batches="alternate")
        >>> isinstance(maker, LabelledBatchSource), maker.labelled_batch_indices(8).tolist()
        (True, [0, 2, 4, 5, 7])
    """

    def labelled_batch_indices(self, dataset_size: int) -> Tensor | None: ...


@runtime_checkable
class EncodedImageSource(Protocol):
    """A dataset whose items can carry encoded image files, decoded as a batch on the training device.

    ``decodes_on_device`` says whether they do (``image-folder`` with ``decode = "device"`` on a
    machine with CUDA): items then hold ``encoded`` bytes instead of ``image`` pixels, and
    :meth:`Pipeline.prepare_batch <contrastkit.pipeline.Pipeline.prepare_batch>` decodes them
    (:func:`~contrastkit.datasets.encoded_images.decode_batch`). The trainer refuses to combine it
    with an augmentation that needs pixels in the DataLoader workers.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from contrastkit.datasets.image_folder import ImageFolderDataset
        >>> ds = ImageFolderDataset(**ImageFolderDataset.contract_params_for(Path(tempfile.mkdtemp())))
        >>> isinstance(ds, EncodedImageSource), ds.decodes_on_device
        (True, False)
    """

    decodes_on_device: bool
