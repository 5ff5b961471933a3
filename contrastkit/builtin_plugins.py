"""contrastkit's own plugins: the modules that register the built-ins, loaded first as the plugin ``contrastkit``.

Each family package registers its built-ins next to their code, with the same ``@hookimpl``
``register_<kind>`` hook a third-party package implements; the registry imports these modules in
this order and registers each with pluggy, all under one :class:`~contrastkit.registry.PluginInfo`
(distribution ``contrastkit``), before any entry point.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(builtins=True, entry_points=False).names("view_makers")
    ['augmented-copies', 'color-split', 'factor-pair', 'image-pair', 'learned-flow', 'rgbd', 'video']
"""

from __future__ import annotations

__all__ = ["BUILTIN_PLUGINS"]

#: The built-in plugin modules, in pipeline order (the order of :data:`contrastkit.slots.SLOT_TABLE`).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "contrastkit.datasets",
    "contrastkit.augmentations",
    "contrastkit.views",
    "contrastkit.encoders",
    "contrastkit.critics",
    "contrastkit.negatives",
    "contrastkit.objectives",
    "contrastkit.regularizers",
)
