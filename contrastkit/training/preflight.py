"""Pre-flight checks: what must hold before a run's first step or an export's first byte.

A long run that dies at its last save loses everything, so the folders and files it will write are
checked up front: the run folder can be created and written, the disk has room for the checkpoints
it will keep, and an export's target is a writable file that is not the checkpoint being read. Each
failure is one :class:`~contrastkit.errors.CheckpointError` line naming the path and the fix.

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> check_run_dir(run); run.is_dir()
    True
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from torch import nn

from contrastkit.errors import CheckpointError

__all__ = ["check_export_target", "check_free_space", "check_run_dir", "check_run_storage", "checkpoint_bytes"]


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(".")


def check_run_dir(path: str | Path, *, key: str = "train.out_dir", create: bool = True) -> None:
    """Create the run folder if needed and prove a file can be written in it; ``key`` is the setting the
    error tells the user to change (``--out`` for ``contrastkit experiment``). With ``create=False``
    (a dry run, which writes nothing) only ask the OS whether the nearest existing folder is writable.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "a-file"; _ = f.write_text("x")
        >>> check_run_dir(f / "run")
        Traceback (most recent call last):
        ...
        contrastkit.errors.CheckpointError: ...: sits under the file ...; set train.out_dir to a folder path
    """
    path = Path(path)
    blocker = _existing_ancestor(path)
    if blocker.exists() and not blocker.is_dir():
        what = "is a file" if blocker == path else f"sits under the file {blocker}"
        raise CheckpointError(f"{path}: {what}; set {key} to a folder path")
    if not create:
        if not os.access(blocker, os.W_OK | os.X_OK):
            raise CheckpointError(f"{path}: cannot write the run folder ({blocker} is not writable); make it "
                                  f"writable or set {key} to another folder")
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(
            f"{path}: cannot write the run folder ({exc.strerror or exc}); make it writable or set {key} "
            "to another folder"
        ) from None


def checkpoint_bytes(modules: Iterable[nn.Module], *, optimizer_slots: int = 2) -> int:
    """Rough size of one checkpoint: weights and buffers, plus ``optimizer_slots`` copies of the weights.

    Adam keeps two moments per weight; SGD with momentum one.

    Example:
        >>> import torch
        >>> checkpoint_bytes([torch.nn.Linear(10, 10)])  # 110 float32 weights x (1 + 2)
        1320
    """
    total = 0
    for module in modules:
        for p in module.parameters():
            total += p.numel() * p.element_size() * (1 + optimizer_slots)
        for b in module.buffers():
            total += b.numel() * b.element_size()
    return total


def check_free_space(path: str | Path, needed: int, *, warn: Callable[[str], None]) -> bool:
    """Call ``warn`` with one line when the disk under ``path`` has less than ``needed`` bytes free.

    Returns whether there is enough room. A warning, not an error: other runs may free space, and
    the estimate is rough.

    Example:
        >>> import tempfile
        >>> check_free_space(tempfile.gettempdir(), 10**30, warn=print)  # doctest: +ELLIPSIS
        warning: ...: ... free, the checkpoints need about ...; free space or set train.out_dir elsewhere
        False
    """
    try:
        free = shutil.disk_usage(_existing_ancestor(Path(path))).free
    except OSError:
        return True
    if free >= needed:
        return True
    warn(f"warning: {path}: {_human(free)} free, the checkpoints need about {_human(needed)}; free space or set "
         "train.out_dir elsewhere")
    return False


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def check_export_target(out: str | Path, *, source: str | Path | None = None) -> None:
    """``out`` must be a file path whose folder can be written, and not the ``source`` being read.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> check_export_target(run / "final.pt", source=run / "final.pt")
        Traceback (most recent call last):
        ...
        contrastkit.errors.CheckpointError: ...final.pt: is the checkpoint being exported; ...
        >>> check_export_target(run / "encoder.safetensors", source=run / "final.pt")
    """
    out = Path(out)
    if source is not None and out.resolve() == Path(source).resolve():
        raise CheckpointError(f"{out}: is the checkpoint being exported; writing it would destroy the checkpoint, "
                              "pass another --out such as encoder.safetensors")
    if out.is_dir():
        raise CheckpointError(f"{out}: is a folder; pass a file path such as {out / 'encoder.safetensors'}")
    folder = _existing_ancestor(out.parent)
    if not folder.is_dir():
        raise CheckpointError(f"{out}: sits under the file {folder}; pass a path in a folder")
    if out.exists() and not os.access(out, os.W_OK):
        raise CheckpointError(f"{out}: exists and is not writable; choose another --out or fix its permissions")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"{out}: cannot write into {folder} (permission denied); choose another --out")


def check_run_storage(out_dir: Path, checkpoints: Any, modules: Iterable[nn.Module], *, cfg: Any,
                      print_fn: Callable[[str], None]) -> None:
    """A run's checks before its first step: the folder is writable, no stale temp files, room on the disk.

    Raises :class:`CheckpointError` naming ``train.out_dir``'s problem; a short disk is a warning.

    Example:
        >>> import tempfile, pathlib
        >>> from contrastkit.config import TrainConfig
        >>> from contrastkit.training.checkpoint import CheckpointDir
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> check_run_storage(run, CheckpointDir(run / "checkpoints"), [nn.Linear(2, 2)], cfg=TrainConfig(),
        ...                   print_fn=print)
    """
    check_run_dir(out_dir)
    for stale in checkpoints.remove_stale_tmp():
        print_fn(f"removed {stale}, left by a save that was killed mid-write")
    slots = 2 if cfg.optimizer == "adamw" else 1
    needed = checkpoint_bytes(modules, optimizer_slots=slots) * (cfg.keep_checkpoints + 2)
    check_free_space(out_dir, needed, warn=print_fn)
