"""Built-in encoders (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_encoders`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["encoders"]
    ['convnet', 'resnet18', 'resnet50', 'torchvision']
"""

from __future__ import annotations

from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.encoders.resnet import ResNet18Encoder, ResNet50Encoder
from contrastkit.encoders.torchvision_arch import TorchvisionEncoder
from contrastkit.hookspecs import builtin_hook

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_encoders = builtin_hook("encoders", {"convnet": ConvNetEncoder, "resnet18": ResNet18Encoder,
                                              "resnet50": ResNet50Encoder, "torchvision": TorchvisionEncoder})
