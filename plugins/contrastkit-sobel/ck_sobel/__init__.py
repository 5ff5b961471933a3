"""contrastkit-sobel: the example plugin package — a ``sobel`` view maker and the ``rince`` objective.

contrastkit finds this module through the entry point ``[project.entry-points.contrastkit]
sobel = "ck_sobel"`` and calls the ``register_*`` hook implementations below; each registers a
factory under the name a recipe selects it by (``[views] name = "sobel"``, ``[objective] name =
"rince"``). A plugin only implements the hooks it needs.

Example:
    >>> from contrastkit.registry import Registry
    >>> import ck_sobel
    >>> registry = Registry(builtins=False, entry_points=False)
    >>> _ = registry.add_plugin(ck_sobel, name="sobel")
    >>> registry.names("view_makers"), registry.names("objectives")
    (['sobel'], ['rince'])
"""

from __future__ import annotations

import contrastkit
from contrastkit.hookspecs import Register

from ck_sobel.rince import RobustInfoNCE, robust_info_nce
from ck_sobel.views import SobelViews, luminance, sobel_edges

__version__ = "0.1.0"

__all__ = [
    "RobustInfoNCE",
    "SobelViews",
    "luminance",
    "register_objectives",
    "register_view_makers",
    "robust_info_nce",
    "sobel_edges",
]


@contrastkit.hookimpl
def register_view_makers(register: Register) -> None:
    """Register :class:`~ck_sobel.views.SobelViews` as ``sobel``.

    Example:
        >>> names = []
        >>> register_view_makers(lambda name, factory: names.append(name))
        >>> names
        ['sobel']
    """
    register("sobel", SobelViews)


@contrastkit.hookimpl
def register_objectives(register: Register) -> None:
    """Register :class:`~ck_sobel.rince.RobustInfoNCE` as ``rince``.

    Example:
        >>> names = []
        >>> register_objectives(lambda name, factory: names.append(name))
        >>> names
        ['rince']
    """
    register("rince", RobustInfoNCE)
