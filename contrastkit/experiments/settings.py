"""How an experiment runs: its :class:`RunSettings`, the ``--seeds`` and ``--scale`` options, and ``--quick``.

An experiment (``contrastkit experiment NAME``) trains a few *arms* — recipes that differ in the
one thing the paper varies — with the same data and schedule, once per seed (``--seeds N``: seeds
``0 .. N-1``, the same seeds for every arm), each seed of an arm in its own folder
(:meth:`RunSettings.arm_dir`). ``--quick`` shrinks every arm to :data:`QUICK_SETTINGS`: a smoke run
of the whole experiment, not a result.

Example:
    >>> s = RunSettings(out_dir=Path("runs/experiments/negatives"), seeds=parse_seeds("2"), scale=parse_scale("cpu"))
    >>> [s.arm_dir("K=16", seed).as_posix() for seed in s.seeds]
    ['runs/experiments/negatives/K=16/seed=0', 'runs/experiments/negatives/K=16/seed=1']
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from contrastkit.errors import ConfigError, InvalidParameter, close_matches

__all__ = [
    "DEFAULT_SEEDS",
    "QUICK_SETTINGS",
    "SCALES",
    "RunSettings",
    "discard",
    "parse_jobs",
    "parse_scale",
    "parse_seeds",
    "smoke_run_settings",
]

#: Applied to every arm by ``--quick``: a smoke run of the whole experiment (tests, CI), not a result.
QUICK_SETTINGS: dict[str, Any] = {
    "data.size": 512,  # 10% labelled (learned-views) must still fill a whole batch of 32
    "train.batch_size": 32,
    "train.max_steps": 2,
    "train.warmup_steps": 0,
    "eval.linear_epochs": 2,
    "eval.max_samples": 96,
    "eval.knn_k": 5,
}


#: The schedules an experiment knows: ``cpu`` (the default: minutes on 2 CPU cores) and ``paper``
#: (longer schedules and more data, for a GPU with ``--device cuda``); each experiment's ``SCALES``
#: says what they mean for it.
SCALES = ("cpu", "paper")
#: Seeds per arm when ``--seeds`` is not given: 3 for a result (the docs page), 1 for a ``--quick`` smoke run.
DEFAULT_SEEDS = 3


def _positive_count(text: str | int, *, option: str, what: str, example: int) -> int:
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"{option}: must be a whole number of {what} >= 1 (got {str(text)!r}); e.g. {option} {example}")
    return count


def parse_seeds(text: str | int) -> tuple[int, ...]:
    """``--seeds N``: the seeds ``0 .. N-1`` (a one-line :class:`ConfigError` naming the option otherwise).

    Example:
        >>> parse_seeds("3")
        (0, 1, 2)
        >>> parse_seeds("0")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --seeds: must be a whole number of seeds >= 1 (got '0'); e.g. --seeds 3
    """
    return tuple(range(_positive_count(text, option="--seeds", what="seeds", example=3)))


def parse_scale(text: str) -> str:
    """``--scale NAME``: one of :data:`SCALES` (a one-line :class:`ConfigError` with close matches otherwise).

    Example:
        >>> parse_scale("paper")
        'paper'
        >>> parse_scale("papr")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --scale: unknown scale 'papr'; did you mean 'paper'? (choose from cpu, paper)
    """
    if text in SCALES:
        return text
    matches = close_matches(text, list(SCALES))
    hint = f"did you mean {matches[0]!r}? " if matches else ""
    raise ConfigError(f"--scale: unknown scale {text!r}; {hint}(choose from {', '.join(SCALES)})")


def parse_jobs(text: str | int) -> int:
    """``--jobs N``: how many runs train at once, each in its own process (a one-line :class:`ConfigError` naming
    the option otherwise).

    Example:
        >>> parse_jobs("2")
        2
        >>> parse_jobs("two")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --jobs: must be a whole number of parallel runs >= 1 (got 'two'); e.g. --jobs 2
    """
    return _positive_count(text, option="--jobs", what="parallel runs", example=2)


def discard(message: str) -> None:
    """A ``print_fn`` that prints nothing; a module-level function, so it reaches ``--jobs`` workers.

    Example:
        >>> discard("not shown")
    """


def _seed_tuple(seeds: Iterable[int]) -> tuple[int, ...]:
    return tuple(seeds)  # a typed converter=tuple: the attrs mypy plugin cannot solve tuple's type variable


def _check_seeds(instance: Any, attribute: Any, value: tuple[int, ...]) -> None:
    if not value or len(set(value)) != len(value) or any(not isinstance(v, int) or v < 0 for v in value):
        raise InvalidParameter("seeds", "must be distinct whole numbers >= 0, at least one", value)


@attrs.frozen
class RunSettings:
    """How an experiment runs: where, on which device, with which seeds and schedule (``scale``), full or
    ``quick`` (a smoke run), and who prints.

    Example:
        >>> s = RunSettings(out_dir=Path("runs/experiments/factors"), quick=True, seeds=(0, 1))
        >>> s.arm_dir("share-digit", 1).as_posix()
        'runs/experiments/factors/share-digit/seed=1'
    """

    out_dir: Path
    quick: bool = False
    device: str = "auto"
    fresh: bool = False
    print_fn: Callable[[str], None] = print
    seeds: tuple[int, ...] = attrs.field(default=(0,), converter=_seed_tuple, validator=_check_seeds)
    scale: str = attrs.field(default="cpu", validator=attrs.validators.in_(SCALES))
    #: Runs (one seed of one arm) trained at once, each in its own process; ``print_fn`` must then pickle.
    jobs: int = attrs.field(default=1, validator=attrs.validators.and_(attrs.validators.instance_of(int),
                                                                    attrs.validators.ge(1)))

    def arm_dir(self, arm: str, seed: int) -> Path:
        """The run folder of one seed of one arm."""
        return self.out_dir / arm / f"seed={seed}"


def smoke_run_settings(out_dir: Path | None = None, *, seeds: tuple[int, ...] = (0,), jobs: int = 1) -> RunSettings:
    """A silent ``--quick`` run on the CPU in ``out_dir`` (a new temporary folder when left out): a smoke run.

    Example:
        >>> s = smoke_run_settings(seeds=(0, 1))
        >>> s.quick, s.device, s.seeds, s.out_dir.is_dir()
        (True, 'cpu', (0, 1), True)
    """
    folder = Path(tempfile.mkdtemp()) if out_dir is None else out_dir
    return RunSettings(out_dir=folder, quick=True, device="cpu", print_fn=discard, seeds=seeds, jobs=jobs)
