"""contrastkit's own plugin: registers the built-ins through the same hooks a third party uses.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(builtins=True, entry_points=False).names("view_makers")
    ['augmented-copies', 'color-split', 'factor-pair', 'image-pair', 'learned-flow', 'rgbd', 'video']
"""

from __future__ import annotations

from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
from contrastkit.augmentations.basic import CropFlip, NoAugmentation
from contrastkit.augmentations.infomin import InfoMinAugmentation
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.critics.bilinear import BilinearCritic
from contrastkit.critics.cosine import CosineCritic
from contrastkit.datasets.cifar10 import CIFAR10Dataset
from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.datasets.image_folder import ImageFolderDataset
from contrastkit.datasets.paired_folder import PairedFolderDataset
from contrastkit.datasets.stl10 import STL10Dataset
from contrastkit.datasets.video_frames import VideoFramesDataset
from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.encoders.resnet import ResNet18Encoder, ResNet50Encoder
from contrastkit.encoders.torchvision_arch import TorchvisionEncoder
from contrastkit.hookspecs import Register, hookimpl
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.negatives.memory_bank import MemoryBankNegatives
from contrastkit.negatives.nearest_neighbour import NearestNeighbourPositives
from contrastkit.negatives.queue import QueueNegatives
from contrastkit.objectives.align_uniform import AlignUniform
from contrastkit.objectives.dcl import DecoupledContrastiveLoss
from contrastkit.objectives.debiased import DebiasedContrastiveLoss
from contrastkit.objectives.hard_negatives import HardNegatives
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.objectives.nce import NCEObjective
from contrastkit.objectives.nt_logistic import NTLogistic
from contrastkit.objectives.supcon import SupCon
from contrastkit.objectives.triplet import MarginTriplet
from contrastkit.regularizers.relic import RelicKL
from contrastkit.views.augmented_copies import AugmentedCopies
from contrastkit.views.color_split import ColorSplitViews
from contrastkit.views.factor_pair import FactorPairViews
from contrastkit.views.image_pair import ImagePairViews
from contrastkit.views.learned_flow import LearnedFlowViews
from contrastkit.views.rgbd import RGBDViews
from contrastkit.views.video import VideoViews

# The hook implementations below are found by pluggy, not imported by users.
__all__: list[str] = []


@hookimpl
def register_datasets(register: Register) -> None:
    register("colorful-moving-digits", ColorfulMovingDigits)
    register("image-folder", ImageFolderDataset)
    register("paired-folder", PairedFolderDataset)
    register("video-frames", VideoFramesDataset)
    register("cifar10", CIFAR10Dataset)
    register("stl10", STL10Dataset)


@hookimpl
def register_augmentations(register: Register) -> None:
    register("none", NoAugmentation)
    register("crop-flip", CropFlip)
    register("simclr", SimCLRAugmentation)
    register("infomin", InfoMinAugmentation)
    register("albumentations", AlbumentationsAugmentation)


@hookimpl
def register_view_makers(register: Register) -> None:
    register("color-split", ColorSplitViews)
    register("augmented-copies", AugmentedCopies)
    register("image-pair", ImagePairViews)
    register("factor-pair", FactorPairViews)
    register("learned-flow", LearnedFlowViews)
    register("video", VideoViews)
    register("rgbd", RGBDViews)


@hookimpl
def register_encoders(register: Register) -> None:
    register("convnet", ConvNetEncoder)
    register("resnet18", ResNet18Encoder)
    register("resnet50", ResNet50Encoder)
    register("torchvision", TorchvisionEncoder)


@hookimpl
def register_critics(register: Register) -> None:
    register("cosine", CosineCritic)
    register("bilinear", BilinearCritic)


@hookimpl
def register_negative_samplers(register: Register) -> None:
    register("in-batch", InBatchNegatives)
    register("memory-bank", MemoryBankNegatives)
    register("queue", QueueNegatives)
    register("nnclr", NearestNeighbourPositives)


@hookimpl
def register_objectives(register: Register) -> None:
    register("infonce", InfoNCE)
    register("nce", NCEObjective)
    register("nt-logistic", NTLogistic)
    register("triplet", MarginTriplet)
    register("supcon", SupCon)
    register("align-uniform", AlignUniform)
    register("dcl", DecoupledContrastiveLoss)
    register("debiased", DebiasedContrastiveLoss)
    register("hard-negatives", HardNegatives)


@hookimpl
def register_regularizers(register: Register) -> None:
    register("relic", RelicKL)
