"""contrastkit: contrastive representation learning with pluggable views, encoders and losses.

Three ways in: ``contrastkit train recipe.toml``, :class:`Pipeline` from Python, and plugin
packages that register components through :data:`hookimpl` (see ``docs/plugins.md``).

Example:
    >>> import contrastkit
    >>> callable(contrastkit.hookimpl), contrastkit.Pipeline.__name__
    (True, 'Pipeline')
"""

from __future__ import annotations

from contrastkit.config import Config, load_config
from contrastkit.errors import ConfigError, ContrastkitError, InvalidParameter
from contrastkit.hookspecs import hookimpl
from contrastkit.pipeline import Pipeline, PipelineOutput
from contrastkit.registry import get_registry
from contrastkit.training import Trainer, TrainResult
from contrastkit.version import __version__

__all__ = [
    "Config",
    "ConfigError",
    "ContrastkitError",
    "InvalidParameter",
    "Pipeline",
    "PipelineOutput",
    "TrainResult",
    "Trainer",
    "__version__",
    "get_registry",
    "hookimpl",
    "load_config",
]
