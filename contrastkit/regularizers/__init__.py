"""Built-in regularisers (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_regularizers`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["regularizers"]
    ['relic']
"""

from __future__ import annotations

from contrastkit.hookspecs import builtin_hook
from contrastkit.regularizers.relic import RelicKL

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_regularizers = builtin_hook("regularizers", {"relic": RelicKL})
