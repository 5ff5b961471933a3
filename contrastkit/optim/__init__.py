"""Optimisation pieces the trainer assembles: LARS, parameter groups, the warm-up + cosine schedule."""

from contrastkit.optim.lars import LARS
from contrastkit.optim.param_groups import param_groups
from contrastkit.optim.schedule import warmup_cosine

__all__ = ["LARS", "param_groups", "warmup_cosine"]
