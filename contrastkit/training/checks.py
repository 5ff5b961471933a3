"""Pre-flight checks shared by ``train``, ``eval`` and ``analyze``: labels a recipe asks for exist.

Each check raises a one-line :class:`ConfigError` naming the key, the problem and a fix (with the
closest match for a misspelled name) before any training or probing starts.

Example:
    >>> check_labels(["digit"], ("digit", "background"))
    ('digit',)
    >>> check_labels(["digt"], ("digit", "background"))
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: eval.labels: the dataset has no label 'digt'; did you mean 'digit'? (got 'digt')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contrastkit.errors import ConfigError, close_matches

__all__ = ["check_labels", "label_keys"]


def label_keys(dataset: Any) -> tuple[str, ...]:
    """The labels a dataset declares (its ``label_keys``; none when it declares none).

    Example:
        >>> class Data:
        ...     label_keys = ("digit",)
        >>> label_keys(Data()), label_keys(object())
        (('digit',), ())
    """
    return tuple(getattr(dataset, "label_keys", ()))


def check_labels(labels: Iterable[str], keys: Iterable[str], *, key: str = "eval.labels",
                 where: str = "the dataset", path: str | None = None) -> tuple[str, ...]:
    """``labels`` as a tuple, each checked to be one of ``keys``; else one line naming ``key``.

    Example:
        >>> check_labels(["x"], (), key="--eval-label", where="the test split")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --eval-label: the test split has no label 'x'; labels: none (got 'x')
    """
    keys = tuple(keys)
    for label in labels:
        if label not in keys:
            matches = close_matches(label, keys)
            hint = f"did you mean {matches[0]!r}?" if matches else f"labels: {', '.join(keys) or 'none'}"
            raise ConfigError(f"{key}: {where} has no label {label!r}; {hint} (got {label!r})", path=path)
    return tuple(labels)
