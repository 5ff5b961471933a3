"""Typed recipes: TOML -> frozen attrs classes through a strict cattrs converter.

A recipe has one table per slot. Plugin tables (``[data]``, ``[augment]``, ``[views]``,
``[encoder]``, ``[critic]``, ``[negatives]``, ``[objective]``, ``[regularizer]``) hold ``name``
plus that plugin's parameters; ``[train]``, ``[eval]`` and ``[log]`` have fixed keys. Unknown keys,
wrong types and bad values fail with one line: ``file: table.key: problem (got X)``.

The package's modules, by job: :mod:`~contrastkit.config.schema` (the classes),
:mod:`~contrastkit.config.converter` (the strict converter and its one-line errors),
:mod:`~contrastkit.config.loading` (files, overrides, plain data) and
:mod:`~contrastkit.config.stages` (``[[stages]]``).

Example:
    >>> cfg = config_from_dict({"critic": {"name": "cosine", "temperature": 0.2}, "train": {"max_steps": 5}})
    >>> cfg.critic.name, dict(cfg.critic.params), cfg.train.max_steps
    ('cosine', {'temperature': 0.2}, 5)
    >>> config_from_dict({"train": {"lr": -1.0}})
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: train.lr: must be > 0 (got -1.0)
"""

from __future__ import annotations

from contrastkit.config.converter import converter, structure_value
from contrastkit.config.loading import apply_overrides, config_from_dict, load_config, read_toml
from contrastkit.config.schema import Config, EvalConfig, LogConfig, PluginTable, StageConfig, TrainConfig
from contrastkit.config.stages import Stage, load_stages, stages_from_dict

__all__ = [
    "Config",
    "EvalConfig",
    "LogConfig",
    "PluginTable",
    "Stage",
    "StageConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "converter",
    "load_config",
    "load_stages",
    "read_toml",
    "stages_from_dict",
    "structure_value",
]
