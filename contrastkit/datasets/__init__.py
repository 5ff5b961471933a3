"""Built-in datasets (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_datasets`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["datasets"]
    ['colorful-moving-digits', 'image-folder', 'paired-folder', 'video-frames', 'cifar10', 'stl10']
"""

from __future__ import annotations

from contrastkit.datasets.cifar10 import CIFAR10Dataset
from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.datasets.image_folder import ImageFolderDataset
from contrastkit.datasets.paired_folder import PairedFolderDataset
from contrastkit.datasets.stl10 import STL10Dataset
from contrastkit.datasets.video_frames import VideoFramesDataset
from contrastkit.hookspecs import builtin_hook

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_datasets = builtin_hook("datasets", {"colorful-moving-digits": ColorfulMovingDigits,
                                              "image-folder": ImageFolderDataset, "paired-folder": PairedFolderDataset,
                                              "video-frames": VideoFramesDataset, "cifar10": CIFAR10Dataset,
                                              "stl10": STL10Dataset})
