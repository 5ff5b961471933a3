"""The NaN/inf guard: a step's loss checked one step late on CUDA (no stall), and the state checked at saves.

Example:
    >>> guard = FiniteGuard(torch.device("cpu"))
    >>> guard.push(1, torch.tensor(0.5))
    >>> guard.push(2, torch.tensor(float("nan")))
    Traceback (most recent call last):
    ...
    contrastkit.training.guard.NonFiniteError: (2, nan, 'loss')
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.errors import TrainingError
from contrastkit.training.checkpoint import first_nonfinite

__all__ = ["FiniteGuard", "NonFiniteError", "check_finite_state", "nonfinite_state", "stopped_error"]


class NonFiniteError(Exception):
    """A non-finite loss (``where="loss"``) or parameter, buffer or optimizer slot (``where`` names it) at ``step``.

    The trainer turns it into a one-line :class:`~contrastkit.errors.TrainingError`.

    Example:
        >>> NonFiniteError(3, float("inf")).where
        'loss'
    """

    def __init__(self, step: int, value: float, where: str = "loss") -> None:
        super().__init__(step, value, where)
        self.step, self.value, self.where = step, value, where


class FiniteGuard:
    """Checks each step's loss is finite: one step late on CUDA (the copy overlaps the next step), at once elsewhere.

    Example:
        >>> guard = FiniteGuard(torch.device("cpu"))
        >>> guard.push(1, torch.tensor(1.0)); guard.flush()
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: tuple[int, Tensor, Any] | None = None

    def push(self, step: int, loss: Tensor) -> None:
        """Queue ``step``'s loss; checks the previous step's (already finished) on CUDA."""
        if not self.cuda:
            self._check(step, loss)
            return
        host = torch.empty((), dtype=torch.float32, pin_memory=True)
        host.copy_(loss.detach().float(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        previous, self.pending = self.pending, (step, host, event)
        if previous is not None:
            previous[2].synchronize()  # the step before: already done while this one was queued
            self._check(previous[0], previous[1])

    def flush(self) -> None:
        """Check the loss still queued (before a save, a probe or the end of the run)."""
        if self.pending is not None:
            step, host, event = self.pending
            self.pending = None
            event.synchronize()
            self._check(step, host)

    @staticmethod
    def _check(step: int, loss: Tensor) -> None:
        value = float(loss)
        if not math.isfinite(value):
            raise NonFiniteError(step, value)


def nonfinite_state(pipeline: nn.Module, optimizers: Sequence[torch.optim.Optimizer]) -> str | None:
    """Which parameter, buffer or optimizer slot holds NaN or inf (``None``: all finite); one host sync.

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> nonfinite_state(layer, []) is None
        True
        >>> with torch.no_grad():
        ...     layer.bias.fill_(float("nan"))
        Parameter containing:
        tensor([nan], requires_grad=True)
        >>> nonfinite_state(layer, [])
        'bias'
    """
    names = {id(p): name for name, p in pipeline.named_parameters()}

    def named() -> Iterator[tuple[str, Tensor]]:
        yield from pipeline.named_parameters()
        yield from pipeline.named_buffers()
        for o in optimizers:
            for param, slots in o.state.items():
                for slot, value in slots.items():
                    if isinstance(value, Tensor):
                        yield f"optimizer {slot} of {names.get(id(param), '<a parameter>')}", value

    return first_nonfinite(named())


def check_finite_state(pipeline: nn.Module, optimizers: Sequence[torch.optim.Optimizer], *, step: int) -> None:
    """Raise :class:`NonFiniteError` naming the first non-finite tensor of the run's state.

    Example:
        >>> check_finite_state(nn.Linear(2, 1), [], step=1)
    """
    bad = nonfinite_state(pipeline, optimizers)
    if bad is not None:
        raise NonFiniteError(step, float("nan"), where=bad)


def stopped_error(exc: NonFiniteError, kept: Path | None) -> TrainingError:
    """The one line for a non-finite loss or state: what, when, and the checkpoint ``kept`` to go back to.

    Example:
        >>> print(stopped_error(NonFiniteError(7, float("nan")), None))
        loss became nan at step 7; stopped (no checkpoint was written yet); lower train.lr, set train.grad_clip or check the data
    """
    what = f"loss became {exc.value}" if exc.where == "loss" else f"{exc.where} became NaN or inf"
    if kept is None:
        return TrainingError(f"{what} at step {exc.step}; stopped (no checkpoint was written yet); lower "
                             "train.lr, set train.grad_clip or check the data")
    return TrainingError(
        f"{what} at step {exc.step}; stopped (the last good checkpoint is {kept}); resume from it with a "
        "lower rate: --resume --set train.lr=... --allow-change train.lr (or set train.grad_clip)"
    )
