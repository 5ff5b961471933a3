"""``contrastkit analyze`` on one recipe file: its fresh pipeline, the I_NCE estimate and, when asked, the probe.

Every call builds the recipe's pipeline afresh from ``train.seed``, so each value of a sweep starts
from the same encoders and critic.

Example:
    >>> import pathlib, tempfile
    >>> recipe = pathlib.Path(tempfile.mkdtemp()) / "tiny.toml"
    >>> _ = recipe.write_text('[data]\\nsize = 16\\nimage_size = 16\\ndigit_size = 8\\n'
    ...                       '[encoder]\\nname = "convnet"\\nwidth = 4\\ndepth = 2\\n[train]\\ndevice = "cpu"\\n')
    >>> found = analyze_recipe(recipe, steps=1, batch_size=8)
    >>> [(e.pair, e.num_negatives) for e in found.estimates], found.probe, str(found.device)
    ([('v1-v2', 7)], None, 'cpu')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import torch

from contrastkit.analysis.information import PairEstimate, estimate_view_information, probe_accuracy

if TYPE_CHECKING:
    from contrastkit.evaluation import EvalResult

__all__ = ["RecipeAnalysis", "analyze_recipe"]


@attrs.frozen
class RecipeAnalysis:
    """What :func:`analyze_recipe` found: the estimate per view pair and, with ``probe``, the linear probe of
    ``label``, on ``device``.

    Example:
        >>> RecipeAnalysis(estimates=[], probe=None, device=torch.device("cpu"), label=None).label is None
        True
    """

    estimates: list[PairEstimate]
    probe: EvalResult | None
    device: torch.device
    label: str | None


def analyze_recipe(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    *,
    steps: int = 200,
    batch_size: int = 128,
    lr: float = 2e-3,
    label: str | None = None,
    probe: bool = False,
) -> RecipeAnalysis:
    """Train the critic of the recipe's fresh pipeline and estimate I_NCE per view pair on its test split
    (:func:`~contrastkit.analysis.estimate_view_information`); with ``probe``, then the linear probe of
    ``label`` (default: the first of ``eval.labels``, else the test split's first label).

    Example:
        >>> analyze_recipe("no-such-recipe.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: no-such-recipe.toml: ...
    """
    from contrastkit.config import load_config
    from contrastkit.errors import ConfigError
    from contrastkit.fresh_pipeline import fresh_pipeline
    from contrastkit.training.checks import check_labels, label_keys
    from contrastkit.training.device import select_device

    path = str(config_path)
    config = load_config(path, overrides)
    if config.stages:
        raise ConfigError("stages: analyze takes a single-stage recipe; --set the stage's keys instead", path=path)
    pipeline = fresh_pipeline(config, path=path)
    test = pipeline.build_dataset("test")
    keys = label_keys(test)
    if probe:
        if label is None:  # default: the first label the recipe evaluates
            label = next(iter(config.eval.labels or keys), None)
        if label is None:
            raise ConfigError("--eval-label: the test split has no labels to probe", path=path)
        check_labels([label], keys, key="--eval-label", where="the test split", path=path)
    pipeline.to(select_device(config.train.device))
    estimates = estimate_view_information(
        pipeline, pipeline.dataset, test, steps=steps, batch_size=batch_size, lr=lr, seed=config.train.seed
    )
    result = None
    if probe:
        assert label is not None  # set and checked above
        result = probe_accuracy(pipeline, pipeline.dataset, test, label=label, config=config)
    return RecipeAnalysis(estimates=estimates, probe=result, device=pipeline.device, label=label)
