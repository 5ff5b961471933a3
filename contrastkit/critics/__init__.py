"""Built-in critics (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_critics`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["critics"]
    ['cosine', 'bilinear']
"""

from __future__ import annotations

from contrastkit.critics.bilinear import BilinearCritic
from contrastkit.critics.cosine import CosineCritic
from contrastkit.hookspecs import builtin_hook

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_critics = builtin_hook("critics", {"cosine": CosineCritic, "bilinear": BilinearCritic})
