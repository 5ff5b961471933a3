"""Checkpoints: atomic writes, a run's checkpoint folder (latest, keep the last k), RNG state capture.

Files live in ``<out_dir>/checkpoints/``: ``step-00000120.pt`` for periodic and epoch-end
checkpoints, ``final.pt`` at the end. Everything in a checkpoint is plain tensors, numbers, strings,
lists and dicts, so it loads with ``torch.load(..., weights_only=True)``.

Example:
    >>> import tempfile, pathlib
    >>> folder = CheckpointDir(pathlib.Path(tempfile.mkdtemp()), keep=2)
    >>> for step in (10, 20, 30):
    ...     _ = folder.save({"step": step}, step=step)
    >>> [p.name for p in folder.periodic()], load_checkpoint(folder.latest())["step"]
    (['step-00000020.pt', 'step-00000030.pt'], 30)
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointDir",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "state_dict_mismatch",
]

_PERIODIC = re.compile(r"^step-(\d+)\.pt$")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically: a temp file in the same folder, fsync, then rename.

    A crash or kill mid-write leaves the previous file at ``path`` untouched and no partial file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"step": 3}); load_checkpoint(p)["step"]
        3
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs).

    Example:
        >>> import tempfile, pathlib, torch
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"model": {"w": torch.ones(2)}})
        >>> load_checkpoint(p)["model"]["w"].tolist()
        [1.0, 1.0]
    """
    return torch.load(path, map_location=map_location, weights_only=True)


class CheckpointDir:
    """A run's checkpoint folder: periodic ``step-N.pt`` files (the last ``keep`` are kept) and ``final.pt``.

    Example:
        >>> import tempfile, pathlib
        >>> folder = CheckpointDir(pathlib.Path(tempfile.mkdtemp()))
        >>> folder.latest() is None
        True
    """

    def __init__(self, path: Path, *, keep: int = 3) -> None:
        self.path = Path(path)
        self.keep = keep

    @property
    def final(self) -> Path:
        """Where the end-of-training checkpoint goes."""
        return self.path / "final.pt"

    def periodic(self) -> list[Path]:
        """Periodic checkpoints, oldest first."""
        if not self.path.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := _PERIODIC.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The checkpoint to resume from: ``final.pt`` if present, else the newest periodic one."""
        if self.final.is_file():
            return self.final
        periodic = self.periodic()
        return periodic[-1] if periodic else None

    def save(self, payload: dict[str, Any], *, step: int) -> Path:
        """Atomically write ``step-<step>.pt``, then delete periodic checkpoints beyond the last ``keep``."""
        path = self.path / f"step-{step:08d}.pt"
        save_checkpoint(path, payload)
        for old in self.periodic()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def save_final(self, payload: dict[str, Any]) -> Path:
        """Atomically write ``final.pt``."""
        save_checkpoint(self.final, payload)
        return self.final


def capture_rng_state() -> dict[str, Any]:
    """Every RNG training draws from: torch (CPU and each CUDA device), NumPy's global and Python's.

    Stored as tensors and plain numbers so ``weights_only`` loading accepts it.

    Example:
        >>> state = capture_rng_state(); a = torch.rand(1)
        >>> restore_rng_state(state); bool(torch.rand(1) == a)
        True
    """
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` captured (CUDA states only where devices exist).

    Example:
        >>> import random
        >>> state = capture_rng_state(); first = (torch.rand(1), np.random.rand(), random.random())
        >>> restore_rng_state(state); (torch.rand(1), np.random.rand(), random.random()) == first
        True
    """
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def state_dict_mismatch(exc: RuntimeError) -> str:
    """The informative part of ``load_state_dict``'s error (missing/unexpected keys, shapes) on one line.

    Example:
        >>> import torch
        >>> try:
        ...     torch.nn.Linear(2, 3).load_state_dict({"weight": torch.zeros(1, 1)}, strict=True)
        ... except RuntimeError as exc:
        ...     print(state_dict_mismatch(exc)[:26])
        Missing key(s) in state_di
    """
    return " ".join(line.strip() for line in str(exc).splitlines()[1:3]) or str(exc)
