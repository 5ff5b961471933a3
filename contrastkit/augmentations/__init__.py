"""Built-in augmentations (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_augmentations`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["augmentations"]
    ['none', 'crop-flip', 'simclr', 'infomin', 'albumentations']
"""

from __future__ import annotations

from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
from contrastkit.augmentations.basic import CropFlip, NoAugmentation
from contrastkit.augmentations.infomin import InfoMinAugmentation
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.hookspecs import builtin_hook

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_augmentations = builtin_hook("augmentations", {"none": NoAugmentation, "crop-flip": CropFlip,
                                                        "simclr": SimCLRAugmentation, "infomin": InfoMinAugmentation,
                                                        "albumentations": AlbumentationsAugmentation})
