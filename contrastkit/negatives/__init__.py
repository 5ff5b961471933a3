"""Built-in negative samplers (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_negative_samplers`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["negative_samplers"]
    ['in-batch', 'memory-bank', 'queue', 'nnclr']
"""

from __future__ import annotations

from contrastkit.hookspecs import builtin_hook
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.negatives.memory_bank import MemoryBankNegatives
from contrastkit.negatives.nearest_neighbour import NearestNeighbourPositives
from contrastkit.negatives.queue import QueueNegatives

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_negative_samplers = builtin_hook("negative_samplers", {"in-batch": InBatchNegatives,
                                                                "memory-bank": MemoryBankNegatives,
                                                                "queue": QueueNegatives,
                                                                "nnclr": NearestNeighbourPositives})
