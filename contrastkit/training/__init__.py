"""The training engine, one job per module.

- :mod:`~contrastkit.training.loop`: :class:`Trainer`, the step loop;
- :mod:`~contrastkit.training.data`: the batch sampler, the DataLoader and epoch starts
  (:mod:`~contrastkit.training.samplers`, :mod:`~contrastkit.training.worker_augmentation`);
- :mod:`~contrastkit.training.state`: the checkpoint schema, restore and the resume rules
  (:mod:`~contrastkit.training.checkpoint` reads and writes the files);
- :mod:`~contrastkit.training.stages`: :class:`StagedTrainer` for ``[[stages]]`` recipes;
- :mod:`~contrastkit.training.reporting`: progress bar, metric window, TensorBoard, projector;
- :mod:`~contrastkit.training.device`: device selection, autocast, determinism, DDP;
- :mod:`~contrastkit.training.optimizers`, :mod:`~contrastkit.training.guard` (NaN/inf);
- :mod:`~contrastkit.training.checks` and :mod:`~contrastkit.training.preflight`: what must hold
  before the first step (shared with ``eval`` and ``export``).

Example:
    >>> from contrastkit.training import Trainer, select_device
    >>> select_device("cpu")
    device(type='cpu')
"""

from contrastkit.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from contrastkit.training.device import select_device
from contrastkit.training.loop import Trainer, TrainResult
from contrastkit.training.stages import StagedTrainer, load_carried_modules
from contrastkit.training.state import CHANGEABLE_ON_RESUME

__all__ = [
    "CHANGEABLE_ON_RESUME",
    "StagedTrainer",
    "TrainResult",
    "Trainer",
    "load_carried_modules",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "select_device",
]
