"""Staged recipes: ``[[stages]]`` trained in order, each stage a :class:`Trainer` run carrying modules forward.

Example:
    >>> StagedTrainer([], print_fn=print)
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: stages: the recipe has no [[stages]]; train it with Trainer
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from contrastkit.config import Stage
from contrastkit.errors import ConfigError
from contrastkit.pipeline import Pipeline
from contrastkit.training.checkpoint import read_checkpoint, state_dict_mismatch
from contrastkit.training.loop import Trainer, TrainResult

__all__ = ["StagedTrainer", "load_carried_modules"]


def load_carried_modules(pipeline: Pipeline, checkpoint: Path, modules: list[str], *, where: str = "carry") -> None:
    """Load the weights of the pipeline's top-level ``modules`` (e.g. ``view_maker``) from ``checkpoint``.

    Everything else keeps its (fresh) initialisation. ``requires_grad`` is untouched, so a frozen
    view maker stays frozen. A module missing from the checkpoint or of another shape is a
    :class:`ConfigError` naming ``where``.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> src, dst = Pipeline(encoder={"name": "convnet", "width": 4}), Pipeline(encoder={"name": "convnet", "width": 4})
        >>> from contrastkit.training.checkpoint import save_checkpoint
        >>> path = Path(tempfile.mkdtemp()) / "final.pt"
        >>> save_checkpoint(path, {"model": src.state_dict()})
        >>> load_carried_modules(dst, path, ["critic"])
        >>> all(torch.equal(a, b) for a, b in zip(src.critic.state_dict().values(), dst.critic.state_dict().values()))
        True
    """
    children = dict(pipeline.named_children())
    state = read_checkpoint(checkpoint)["model"]
    for name in modules:
        if name not in children:
            raise ConfigError(
                f"{where}: the pipeline has no module {name!r}; modules: {', '.join(sorted(children))} (got {name!r})"
            )
        prefix = name + "."
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            children[name].load_state_dict(sub, strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"{where}: {name!r} in {checkpoint} does not fit this stage's {name}; the stages must build the "
                f"same {name} ({state_dict_mismatch(exc)})"
            ) from None


class StagedTrainer:
    """Trains the stages of a ``[[stages]]`` recipe in order, each a :class:`Trainer` run of its own.

    Every stage's pipeline and trainer are built (and checked) before the first step, each seeded
    by its ``train.seed``: the modules a stage does not ``carry`` start from that fresh
    initialisation, the carried ones from the previous stage's ``final.pt``. ``fit(resume=True)``
    skips stages whose ``final.pt`` exists and resumes the interrupted one.

    Example:
        >>> import tempfile
        >>> from contrastkit.config import stages_from_dict
        >>> raw = {"data": {"size": 32}, "encoder": {"width": 4, "depth": 2}, "eval": {"knn": False},
        ...        "log": {"progress": False, "tensorboard": False},
        ...        "train": {"max_steps": 1, "batch_size": 8, "device": "cpu", "out_dir": tempfile.mkdtemp()},
        ...        "stages": [{"name": "one"}, {"name": "two", "carry": ["critic"]}]}
        >>> results = StagedTrainer(stages_from_dict(raw), print_fn=lambda _: None).fit()
        >>> [(r.steps, r.checkpoint.parent.parent.name) for r in results]
        [(1, 'one'), (1, 'two')]
    """

    def __init__(self, stages: list[Stage], *, path: str | None = None, print_fn: Callable[[str], None] = print) -> None:
        if not stages:
            raise ConfigError("stages: the recipe has no [[stages]]; train it with Trainer", path=path)
        self.stages = stages
        self.path = path
        self.print = print_fn
        self.trainers: list[Trainer] = []
        for stage in stages:
            where = f"stages[{stage.index}] ({stage.name})"
            try:
                trainer = Trainer.from_config(stage.config, print_fn=print_fn)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.message}", path=path) from None
            children = {name for name, _ in trainer.pipeline.named_children()}
            for name in stage.entry.carry:
                if name not in children:
                    raise ConfigError(
                        f"stages[{stage.index}].carry: the pipeline has no module {name!r}; modules: "
                        f"{', '.join(sorted(children))} (got {name!r})",
                        path=path,
                    )
            self.trainers.append(trainer)

    def fit(self, *, resume: bool = False, allow_changes: Sequence[str] = ()) -> list[TrainResult]:
        """Run every stage (skipping finished ones when ``resume``); one :class:`TrainResult` per stage.

        ``allow_changes`` is passed to each resumed stage's :meth:`Trainer.fit`.
        """
        results: list[TrainResult] = []
        for stage, trainer in zip(self.stages, self.trainers):
            header = f"stage {stage.index + 1}/{stage.count} {stage.name} -> {trainer.out_dir}"
            final = trainer.checkpoints.final
            if resume and final.is_file() and not stage.is_last:
                state = read_checkpoint(final)
                self.print(f"{header}: finished ({final}), skipped")
                results.append(TrainResult(
                    steps=int(state.get("step", 0)), seconds=0.0, images_per_second=0.0,
                    final_metrics=dict(state.get("metrics") or {}), checkpoint=final, tensorboard_dir=None,
                    knn=[], resumed_from=final,
                ))
                continue
            if stage.entry.carry:
                previous = self.trainers[stage.index - 1].checkpoints.final
                if not previous.is_file():
                    raise ConfigError(
                        f"stages[{stage.index}].carry: the previous stage's final checkpoint {previous} is missing; "
                        "train the stages in order (or --resume)", path=self.path,
                    )
                load_carried_modules(trainer.pipeline, previous, list(stage.entry.carry),
                                     where=f"stages[{stage.index}].carry")
                self.print(f"{header} (carrying {', '.join(stage.entry.carry)} from {previous})")
            else:
                self.print(header)
            results.append(trainer.fit(resume=resume, allow_changes=allow_changes if resume else ()))
        return results
