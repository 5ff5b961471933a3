"""The optional capabilities a plugin may declare, one small ``runtime_checkable`` Protocol each.

A plugin implements its interface (:mod:`contrastkit.interfaces`) and, where it needs more of the
framework, one of these: the Pipeline and the Trainer test ``isinstance(component, Hook)`` and use the
attribute, so a capability is found by its declared shape, never by a string ``getattr``. The contract
kit (:mod:`contrastkit.testing`) checks the values of every hook a plugin has. ``docs/architecture.md``
("Optional hooks") says who calls each one and when.

Example:
    >>> from contrastkit.views.learned_flow import LearnedFlowViews
    >>> maker = LearnedFlowViews(num_layers=1, hidden=4)
    >>> isinstance(maker, AdversarialViewMaker), maker.contrast_sign
    (True, -1.0)
    >>> from contrastkit.views.factor_pair import FactorPairViews
    >>> isinstance(FactorPairViews(share=["digit"]), AdversarialViewMaker)
    False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from contrastkit.interfaces import Batch, PairLogits

__all__ = [
    "AdversarialViewMaker",
    "AuxiliaryLossName",
    "AuxiliaryLossViewMaker",
    "BatchKeyReader",
    "BatchKeysHint",
    "DatasetParameterSource",
    "DisplayableViews",
    "EpochDataset",
    "ImageChannels",
    "MomentumKeyed",
    "SameViewObjective",
    "SampleAugmentation",
    "SupervisedViewMaker",
    "TemperedCritic",
    "TransposableNegatives",
    "ViewParameterGroups",
    "WorkerAugmentation",
    "runs_in_workers",
]


@runtime_checkable
class BatchKeyReader(Protocol):
    """A view maker that reads batch entries besides ``image`` (the trainer checks the data has them).

    Example:
        >>> from contrastkit.views.factor_pair import FactorPairViews
        >>> isinstance(FactorPairViews(share=["digit"]), BatchKeyReader)
        True
    """

    @property
    def required_keys(self) -> tuple[str, ...]: ...


@runtime_checkable
class BatchKeysHint(Protocol):
    """A phrase naming the dataset setting that provides a view maker's ``required_keys`` (for the error).

    Example:
        >>> from contrastkit.views.video import VideoViews
        >>> isinstance(VideoViews(), BatchKeysHint), isinstance(VideoViews(), BatchKeyReader)
        (True, True)
    """

    @property
    def required_keys_hint(self) -> str: ...


@runtime_checkable
class AdversarialViewMaker(Protocol):
    """A view maker that may play against the encoders: ``contrast_sign = -1.0`` maximises their loss.

    The Pipeline reverses the gradient between such views and the encoders (InfoMin's
    ``min_g max_f I_NCE``); ``+1.0`` plays with them.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> LearnedFlowViews(num_layers=1, hidden=4, mode="frozen").contrast_sign
        1.0
    """

    @property
    def contrast_sign(self) -> float: ...


@runtime_checkable
class AuxiliaryLossViewMaker(Protocol):
    """A view maker with its own loss term on its views (before any gradient reversal), added in training.

    Logged as ``view_maker/<name>`` (:class:`AuxiliaryLossName`, else ``auxiliary``); InfoMin's
    semi-supervised classification term.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> isinstance(LearnedFlowViews(num_layers=1, hidden=4), AuxiliaryLossViewMaker)
        True
    """

    def auxiliary_loss(self, batch: Batch, views: Sequence[Tensor]) -> Tensor | None: ...


@runtime_checkable
class AuxiliaryLossName(Protocol):
    """The name an auxiliary loss is logged under, ``view_maker/<auxiliary_loss_name>``.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> LearnedFlowViews(num_layers=1, hidden=4).auxiliary_loss_name
        'classification'
    """

    auxiliary_loss_name: str


@runtime_checkable
class SupervisedViewMaker(Protocol):
    """A view maker trained on a class label: ``supervised_label`` with ``num_classes`` classes (or ``None``).

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10)
        >>> isinstance(maker, SupervisedViewMaker), maker.supervised_label, maker.num_classes
        (True, 'digit', 10)
    """

    supervised_label: str | None
    num_classes: int | None


@runtime_checkable
class ViewParameterGroups(Protocol):
    """A trainable view maker's parameter groups for its own optimizer, each trainable parameter once.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> maker = LearnedFlowViews(num_layers=1, hidden=4)
        >>> isinstance(maker, ViewParameterGroups), [g["lr"] for g in maker.parameter_groups(1e-3)]
        (True, [0.001])
    """

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]: ...


@runtime_checkable
class DisplayableViews(Protocol):
    """A view maker that can draw its views as pictures (``[B, 3, H, W]`` in [0, 1]) for TensorBoard.

    Example:
        >>> import torch
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> maker = LearnedFlowViews(num_layers=1, hidden=4)
        >>> isinstance(maker, DisplayableViews), len(maker.learned_views_for_display(torch.rand(2, 3, 4, 4)))
        (True, 2)
    """

    def learned_views_for_display(self, images: Tensor) -> list[Tensor]: ...


@runtime_checkable
class DatasetParameterSource(Protocol):
    """A view maker that sets dataset parameters (e.g. ``factor-pair``'s ``{"pair": [...]}``); a recipe must agree.

    Example:
        >>> from contrastkit.views.factor_pair import FactorPairViews
        >>> sorted(FactorPairViews(share=["digit"]).dataset_parameters)
        ['pair']
    """

    @property
    def dataset_parameters(self) -> Mapping[str, Any]: ...


@runtime_checkable
class ImageChannels(Protocol):
    """A view maker's accepted image channel counts (the first is used to test it; ``rgbd``: ``(4, 7)``).

    Example:
        >>> from contrastkit.views.rgbd import RGBDViews
        >>> RGBDViews().image_channels
        (4, 7)
    """

    @property
    def image_channels(self) -> tuple[int, ...]: ...


@runtime_checkable
class EpochDataset(Protocol):
    """A dataset whose samples depend on the epoch (``set_epoch(epoch)`` before each epoch's batches).

    Example:
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> ds = ColorfulMovingDigits(size=4, image_size=16, digit_size=8, pair=["digit"])
        >>> isinstance(ds, EpochDataset), isinstance([1, 2], EpochDataset)
        (True, False)
    """

    def set_epoch(self, epoch: int) -> None: ...


@runtime_checkable
class WorkerAugmentation(Protocol):
    """An augmentation that says where it runs: ``runs_in_workers = True``, per sample in the DataLoader workers.

    Example:
        >>> from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
        >>> runs_in_workers(AlbumentationsAugmentation())
        True
    """

    runs_in_workers: bool


@runtime_checkable
class SampleAugmentation(Protocol):
    """What the workers call on each sample of a worker augmentation: ``augment_sample(image HWC, seed=)``.

    Example:
        >>> import numpy as np
        >>> class Flip:
        ...     def augment_sample(self, image, *, seed):
        ...         return image[:, ::-1] if seed % 2 else image
        >>> isinstance(Flip(), SampleAugmentation)
        True
        >>> Flip().augment_sample(np.arange(4, dtype=np.uint8).reshape(1, 4, 1), seed=1)[0, :, 0].tolist()
        [3, 2, 1, 0]
    """

    def augment_sample(self, image: np.ndarray, *, seed: int) -> np.ndarray: ...


def runs_in_workers(augmentation: object) -> bool:
    """Whether ``augmentation`` declares it runs in the DataLoader workers (:class:`WorkerAugmentation`).

    Example:
        >>> from contrastkit.augmentations.simclr import SimCLRAugmentation
        >>> runs_in_workers(SimCLRAugmentation())
        False
    """
    return isinstance(augmentation, WorkerAugmentation) and bool(augmentation.runs_in_workers)


@runtime_checkable
class TransposableNegatives(Protocol):
    """A negative sampler whose reverse direction can be the forward logits transposed (``None`` where not).

    The Pipeline asks only for a symmetric critic without same-view negatives or momentum keys.

    Example:
        >>> from contrastkit.negatives.in_batch import InBatchNegatives
        >>> isinstance(InBatchNegatives(num_views=2, dataset_size=4, embedding_dim=2), TransposableNegatives)
        True
    """

    def reverse_pair_logits(self, forward: PairLogits) -> PairLogits | None: ...


@runtime_checkable
class MomentumKeyed(Protocol):
    """A negative sampler or regulariser that wants keys from a momentum encoder (``key_momentum``, or ``None``).

    Example:
        >>> from contrastkit.negatives.queue import QueueNegatives
        >>> isinstance(QueueNegatives(num_views=2, dataset_size=4, embedding_dim=2, size=8), MomentumKeyed)
        True
    """

    @property
    def key_momentum(self) -> float | None: ...


@runtime_checkable
class SameViewObjective(Protocol):
    """An objective that may ask for the anchor view's other samples as negatives (NT-Xent).

    Example:
        >>> from contrastkit.objectives.infonce import InfoNCE
        >>> InfoNCE(same_view_negatives=True).same_view_negatives
        True
    """

    same_view_negatives: bool


@runtime_checkable
class TemperedCritic(Protocol):
    """A critic with a temperature (shown in the pipeline's description).

    Example:
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> isinstance(CosineCritic(feature_dims=(4, 4), temperature=0.2), TemperedCritic)
        True
    """

    temperature: float
