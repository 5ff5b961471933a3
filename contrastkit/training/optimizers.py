"""The run's optimizers: the model's (SGD, LARS or AdamW, with weight-decay groups) and a view maker's Adam.

The view maker's gradient already carries its sign (``contrast_sign`` reverses it in the pipeline),
so both optimizers simply descend: the min-max game needs no special case here.

Example:
    >>> from contrastkit.config import TrainConfig
    >>> from contrastkit.pipeline import Pipeline
    >>> optimizer, view_optimizer = build_optimizers(Pipeline(encoder={"name": "convnet", "width": 4}),
    ...                                              TrainConfig(optimizer="sgd", lr=0.1))
    >>> type(optimizer).__name__, view_optimizer
    ('SGD', None)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.config import TrainConfig
from contrastkit.errors import ConfigError
from contrastkit.interfaces import is_trainable
from contrastkit.optim import LARS, param_groups
from contrastkit.optional_hooks import ViewParameterGroups
from contrastkit.pipeline import Pipeline

__all__ = ["build_optimizers", "view_maker_parameters"]


def view_maker_parameters(pipeline: Pipeline) -> list[nn.Parameter]:
    """The view maker's parameters that train (none for a fixed or frozen view maker).

    Example:
        >>> view_maker_parameters(Pipeline(encoder={"name": "convnet", "width": 4}))
        []
    """
    maker = pipeline.view_maker
    return [p for p in maker.parameters() if p.requires_grad] if is_trainable(maker) else []


def _view_maker_groups(pipeline: Pipeline, lr: float) -> list[dict[str, Any]]:
    """The view optimizer's groups: the maker's own ``parameter_groups(lr)`` when it has one, else one group."""
    maker = pipeline.view_maker
    params = view_maker_parameters(pipeline)
    if not isinstance(maker, ViewParameterGroups):
        return [{"params": params, "lr": lr}]
    groups = [g for g in maker.parameter_groups(lr) if g["params"]]
    grouped = [id(p) for g in groups for p in g["params"]]
    if sorted(grouped) != sorted(id(p) for p in params):  # each trainable parameter exactly once
        raise ConfigError(
            f"views: {type(maker).__name__}.parameter_groups() must list each trainable parameter of the "
            "view maker exactly once"
        )
    return groups


def build_optimizers(pipeline: Pipeline, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """The model optimizer over every module but the view maker and, for a trainable view maker, its own Adam.

    Example:
        >>> from contrastkit.config import TrainConfig
        >>> pipeline = Pipeline(encoder={"name": "convnet", "width": 4}, views={"name": "learned-flow", "num_layers": 1,
        ...                     "hidden": 4})
        >>> [type(o).__name__ for o in build_optimizers(pipeline, TrainConfig(view_maker_lr=1e-3))]
        ['AdamW', 'Adam']
    """
    view_params = {id(p) for p in view_maker_parameters(pipeline)}
    modules = [m for name, m in pipeline.named_children() if name != "view_maker"]
    groups = param_groups(modules, weight_decay=cfg.weight_decay, decay_norms_and_biases=cfg.weight_decay_norms_and_biases)
    for group in groups:
        group["params"] = [p for p in group["params"] if id(p) not in view_params]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError("encoder: the pipeline has no trainable parameters; check the encoder table")
    if cfg.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    elif cfg.optimizer == "lars":
        optimizer = LARS(groups, lr=cfg.lr, momentum=cfg.momentum, trust=cfg.lars_trust, nesterov=cfg.nesterov)
    else:
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    view_optimizer = None
    if view_params:
        view_optimizer = torch.optim.Adam(_view_maker_groups(pipeline, cfg.view_maker_lr or cfg.lr))
    return optimizer, view_optimizer
