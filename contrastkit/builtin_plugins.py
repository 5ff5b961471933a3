"""contrastkit's own plugin: registers the built-ins through the same hooks a third party uses.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(builtins=True, entry_points=False).names("view_makers")
    ['color-split']
"""

from __future__ import annotations

from contrastkit.augmentations.basic import CropFlip, NoAugmentation
from contrastkit.critics.cosine import CosineCritic
from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.encoders.resnet import ResNet18Encoder
from contrastkit.hookspecs import Register, hookimpl
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.regularizers.relic import RelicKL
from contrastkit.views.color_split import ColorSplitViews

# The hook implementations below are found by pluggy, not imported by users.
__all__: list[str] = []


@hookimpl
def register_datasets(register: Register) -> None:
    register("colorful-moving-digits", ColorfulMovingDigits)


@hookimpl
def register_augmentations(register: Register) -> None:
    register("none", NoAugmentation)
    register("crop-flip", CropFlip)


@hookimpl
def register_view_makers(register: Register) -> None:
    register("color-split", ColorSplitViews)


@hookimpl
def register_encoders(register: Register) -> None:
    register("convnet", ConvNetEncoder)
    register("resnet18", ResNet18Encoder)


@hookimpl
def register_critics(register: Register) -> None:
    register("cosine", CosineCritic)


@hookimpl
def register_negative_samplers(register: Register) -> None:
    register("in-batch", InBatchNegatives)


@hookimpl
def register_objectives(register: Register) -> None:
    register("infonce", InfoNCE)


@hookimpl
def register_regularizers(register: Register) -> None:
    register("relic", RelicKL)
