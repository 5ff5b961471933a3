"""Probe a recipe's checkpoint (or its random-init encoders) on every label: what ``contrastkit eval`` runs.

The checkpoint is chosen and read first (before the slower dataset is built): ``checkpoint`` if
given, else the newest one in ``<train.out_dir>/checkpoints/`` that reads and is finite. The
recipe's pipeline is built from ``train.seed`` (:func:`~contrastkit.fresh_pipeline.fresh_pipeline`),
the weights are loaded strictly, and both probes run on ``eval.labels`` (default: every label of
the dataset). A ``[[stages]]`` recipe is evaluated as its last stage, from that stage's run folder.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> recipe = folder / "tiny.toml"
    >>> _ = recipe.write_text(f'[data]\\nsize = 16\\n[encoder]\\nname = "convnet"\\nwidth = 4\\ndepth = 2\\n'
    ...                       f'[train]\\ndevice = "cpu"\\nout_dir = "{(folder / "run").as_posix()}"\\n'
    ...                       '[eval]\\nlabels = ["background"]\\nknn = false\\nlinear_epochs = 1\\n')
    >>> found = evaluate_checkpoint(recipe, random_init=True)
    >>> found.checkpoint, found.random_init, [(r.label, r.probe) for r in found.results]
    (None, True, [('background', 'linear'), ('background', 'knn')])
    >>> evaluate_checkpoint(recipe)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    contrastkit.errors.CheckpointError: .../run/checkpoints: checkpoint not found; train first or pass --checkpoint
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from contrastkit.config import Config

if TYPE_CHECKING:
    from contrastkit.evaluation import EvalResult

__all__ = ["CheckpointEvaluation", "choose_checkpoint", "evaluate_checkpoint"]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


@attrs.frozen
class CheckpointEvaluation:
    """The probes' results for one checkpoint (``checkpoint`` and its ``step``; both ``None`` for the
    random-init encoders, seeded by ``seed``), computed on ``device``.

    Example:
        >>> found = CheckpointEvaluation(checkpoint=None, step=None, device=torch.device("cpu"), seed=0, results=[])
        >>> found.as_dict()
        {'checkpoint': None, 'random_init': True, 'step': None, 'device': 'cpu', 'results': []}
    """

    checkpoint: Path | None
    step: int | None
    device: torch.device
    seed: int
    results: list[EvalResult]

    @property
    def random_init(self) -> bool:
        """Whether the freshly initialised encoders were probed (no checkpoint)."""
        return self.checkpoint is None

    def as_dict(self) -> dict[str, Any]:
        """Plain data: the object ``contrastkit eval --json`` prints.

        Example:
            >>> found = CheckpointEvaluation(checkpoint=Path("final.pt"), step=2, device=torch.device("cpu"), seed=0,
            ...                              results=[])
            >>> found.as_dict()["checkpoint"], found.as_dict()["random_init"]
            ('final.pt', False)
        """
        return {
            "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
            "random_init": self.random_init,
            "step": self.step,
            "device": str(self.device),
            "results": [r.as_dict() for r in self.results],
        }


def choose_checkpoint(config: Config, checkpoint: str | Path | None = None, *,
                      print_fn: Callable[[str], None] = _to_stderr) -> tuple[Path, dict[str, Any]]:
    """``(path, payload)`` of ``checkpoint``, else of the newest checkpoint in ``<train.out_dir>/checkpoints/``
    that reads and is finite; each newer file passed over is one ``skipped FILE: reason`` line to ``print_fn``.

    Example:
        >>> from contrastkit.config import config_from_dict
        >>> choose_checkpoint(config_from_dict({"train": {"out_dir": "no/such/run"}}))
        Traceback (most recent call last):
        ...
        contrastkit.errors.CheckpointError: no/such/run/checkpoints: checkpoint not found; train first or pass --checkpoint
    """
    from contrastkit.errors import CheckpointError
    from contrastkit.training.checkpoint import CheckpointDir, nonfinite_in_checkpoint, read_checkpoint

    if checkpoint:
        path = Path(checkpoint)
        payload = read_checkpoint(path)
        bad = nonfinite_in_checkpoint({"model": payload["model"]})
        if bad is not None:
            raise CheckpointError(f"{path}: {bad} holds NaN or inf (the run diverged); evaluate an "
                                  "earlier checkpoint from its checkpoints/ folder")
        return path, payload
    folder = Path(config.train.out_dir or "runs/default") / "checkpoints"
    newest, found, skipped = CheckpointDir(folder).newest_valid(resumable=False)
    for line in skipped:
        print_fn(f"skipped {line}")
    if newest is None or found is None:
        raise CheckpointError(skipped[0] if skipped else f"{folder}: checkpoint not found; train first or pass "
                              "--checkpoint")
    return newest, found


def evaluate_checkpoint(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    *,
    checkpoint: str | Path | None = None,
    random_init: bool = False,
    print_fn: Callable[[str], None] = _to_stderr,
) -> CheckpointEvaluation:
    """Linear and kNN probes of a checkpoint's encoders (``random_init``: of the fresh ones), on every label.

    ``overrides`` are ``--set`` strings; ``checkpoint`` defaults to :func:`choose_checkpoint`'s pick
    (whose ``skipped`` lines go to ``print_fn``). Weights that do not fit the recipe's pipeline are one line.

    Example:
        >>> evaluate_checkpoint("no-such-recipe.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: no-such-recipe.toml: ...
    """
    from contrastkit.config import load_config, load_stages
    from contrastkit.errors import ConfigError, ContrastkitError, InvalidParameter
    from contrastkit.evaluation import evaluate
    from contrastkit.fresh_pipeline import fresh_pipeline
    from contrastkit.training.checkpoint import state_dict_mismatch
    from contrastkit.training.checks import check_labels, label_keys
    from contrastkit.training.device import select_device

    if random_init and checkpoint:
        raise InvalidParameter("checkpoint", "give a checkpoint or random_init, not both", str(checkpoint))
    path = str(config_path)
    config = load_config(path, overrides)
    if config.stages:  # a staged recipe is evaluated as its last stage, from that stage's run folder
        config = load_stages(path, overrides)[-1].config
    chosen, payload = (None, None) if random_init else choose_checkpoint(config, checkpoint, print_fn=print_fn)
    device = select_device(config.train.device)
    pipeline = fresh_pipeline(config, path=path)  # random_init: the weights training would have started from
    if payload is not None:
        try:
            pipeline.load_state_dict(payload["model"], strict=True)
        except RuntimeError as exc:
            raise ContrastkitError(
                f"{chosen}: the weights do not fit {path}'s pipeline; pass the recipe it was trained "
                f"with ({state_dict_mismatch(exc)})"
            ) from None
    pipeline.to(device)
    assert pipeline.dataset is not None  # from_config always builds the [data] slot
    keys = label_keys(pipeline.dataset)
    labels = check_labels(config.eval.labels if config.eval.labels is not None else keys, keys, path=path)
    if not labels:
        raise ConfigError("data: the dataset declares no label_keys; there is nothing to evaluate", path=path)
    results = evaluate(
        pipeline, pipeline.dataset, pipeline.build_dataset("test"), labels=labels, k=config.eval.knn_k,
        temperature=config.eval.knn_temperature, epochs=config.eval.linear_epochs,
        batch_size=config.train.batch_size, max_samples=config.eval.max_samples, seed=config.train.seed,
    )
    step = payload.get("step") if payload is not None else None
    return CheckpointEvaluation(checkpoint=chosen, step=step, device=device, seed=config.train.seed, results=results)
