"""A recipe's pipeline with the weights training starts from: torch seeded with ``train.seed``, then built.

``contrastkit eval --random-init`` and ``contrastkit analyze`` build their pipelines here, so their
fresh encoders are the weights ``contrastkit train`` starts from (:meth:`Trainer.from_config
<contrastkit.training.Trainer.from_config>` seeds the same way before it builds).

Example:
    >>> from contrastkit.config import config_from_dict
    >>> cfg = config_from_dict({"data": {"size": 8}, "encoder": {"name": "convnet", "width": 4, "depth": 2}})
    >>> first, second = fresh_pipeline(cfg), fresh_pipeline(cfg)
    >>> all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    True
"""

from __future__ import annotations

import torch

from contrastkit.config import Config
from contrastkit.pipeline import Pipeline

__all__ = ["fresh_pipeline"]


def fresh_pipeline(config: Config, *, path: str | None = None) -> Pipeline:
    """``config``'s pipeline (on the CPU), built right after seeding torch with ``train.seed``.

    ``path`` is the recipe file, for messages.

    Example:
        >>> from contrastkit.config import config_from_dict
        >>> fresh_pipeline(config_from_dict({"data": {"size": 8}})).dataset is not None
        True
    """
    torch.manual_seed(config.train.seed)  # the same fresh weights on every call, as training starts from
    return Pipeline.from_config(config, path=path)
