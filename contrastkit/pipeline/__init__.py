"""The Pipeline: the model that turns a batch into a loss, built from one component per slot.

The package's modules, by job: :mod:`~contrastkit.pipeline.model` (the ``Pipeline`` module),
:mod:`~contrastkit.pipeline.build` (building the slots, per view where the recipe says so),
:mod:`~contrastkit.pipeline.checks` (whether the built slots fit together),
:mod:`~contrastkit.pipeline.step` (the pieces of one forward step) and
:mod:`~contrastkit.pipeline.summary` (``Pipeline.describe()``).

Example:
    >>> import torch
    >>> from contrastkit.pipeline import Pipeline
    >>> pipe = Pipeline(views={"name": "color-split", "space": "lab"}, encoder={"name": "convnet", "width": 8},
    ...                 critic={"name": "cosine", "temperature": 0.2}, dataset_size=16)
    >>> out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    >>> out.loss.shape, sorted(out.metrics)
    (torch.Size([]), ['loss', 'loss/v1-v2', 'mi_lower_bound/v1-v2', 'negatives/v1-v2'])
"""

from __future__ import annotations

from contrastkit.pipeline.model import Pipeline
from contrastkit.pipeline.step import PipelineOutput, view_pairs

__all__ = ["Pipeline", "PipelineOutput", "view_pairs"]
