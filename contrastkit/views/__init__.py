"""Built-in view makers (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_view_makers`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["view_makers"]
    ['color-split', 'augmented-copies', 'image-pair', 'factor-pair', 'learned-flow', 'video', 'rgbd']
"""

from __future__ import annotations

from contrastkit.hookspecs import builtin_hook
from contrastkit.views.augmented_copies import AugmentedCopies
from contrastkit.views.color_split import ColorSplitViews
from contrastkit.views.factor_pair import FactorPairViews
from contrastkit.views.image_pair import ImagePairViews
from contrastkit.views.learned_flow import LearnedFlowViews
from contrastkit.views.rgbd import RGBDViews
from contrastkit.views.video import VideoViews

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_view_makers = builtin_hook("view_makers", {"color-split": ColorSplitViews, "augmented-copies": AugmentedCopies,
                                                    "image-pair": ImagePairViews, "factor-pair": FactorPairViews,
                                                    "learned-flow": LearnedFlowViews, "video": VideoViews,
                                                    "rgbd": RGBDViews})
