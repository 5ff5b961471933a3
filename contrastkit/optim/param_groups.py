"""Split parameters into decayed and non-decayed groups: no weight decay on norm layers and biases."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["param_groups"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def param_groups(
    modules: nn.Module | list[nn.Module], *, weight_decay: float, decay_norms_and_biases: bool = False
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weights with ``weight_decay``; norm parameters and biases without.

    The no-decay group also carries ``lars_adapt=False`` (ignored by other optimizers), since LARS
    skips its trust ratio for the same parameters. Parameters are de-duplicated (a shared encoder
    appears once); frozen parameters are left out.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        >>> [len(g["params"]) for g in param_groups(net, weight_decay=1e-4)]
        [1, 3]
        >>> len(param_groups(net, weight_decay=1e-4, decay_norms_and_biases=True))
        1
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in modules if isinstance(modules, list) else [modules]:
        for sub in module.modules():
            is_norm = isinstance(sub, _NORMS)
            for name, p in sub.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                if decay_norms_and_biases or not (is_norm or name.endswith("bias") or p.ndim <= 1):
                    decay.append(p)
                else:
                    no_decay.append(p)
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lars_adapt": False})
    return groups
