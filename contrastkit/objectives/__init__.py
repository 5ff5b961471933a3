"""Built-in objectives (one per module); this package registers them, as part of the plugin ``contrastkit``.

The registry loads this package as a plugin (:data:`contrastkit.builtin_plugins.BUILTIN_PLUGINS`), through
the same ``register_objectives`` hook a third-party package implements.

Example:
    >>> from contrastkit.registry import Registry
    >>> Registry(entry_points=False).plugins["contrastkit"].registered["objectives"]
    ['infonce', 'nce', 'nt-logistic', 'triplet', 'supcon', 'align-uniform', 'dcl', 'debiased', 'hard-negatives']
"""

from __future__ import annotations

from contrastkit.hookspecs import builtin_hook
from contrastkit.objectives.align_uniform import AlignUniform
from contrastkit.objectives.dcl import DecoupledContrastiveLoss
from contrastkit.objectives.debiased import DebiasedContrastiveLoss
from contrastkit.objectives.hard_negatives import HardNegatives
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.objectives.nce import NCEObjective
from contrastkit.objectives.nt_logistic import NTLogistic
from contrastkit.objectives.supcon import SupCon
from contrastkit.objectives.triplet import MarginTriplet

# pluggy finds the hook by its name; users import nothing from here.
__all__: list[str] = []

register_objectives = builtin_hook("objectives", {"infonce": InfoNCE, "nce": NCEObjective, "nt-logistic": NTLogistic,
                                                  "triplet": MarginTriplet, "supcon": SupCon,
                                                  "align-uniform": AlignUniform, "dcl": DecoupledContrastiveLoss,
                                                  "debiased": DebiasedContrastiveLoss, "hard-negatives": HardNegatives})
