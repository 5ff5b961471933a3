"""Checkpoints: atomic writes, one reader that turns every fault into one line, a run's folder, RNG state.

Files live in ``<out_dir>/checkpoints/``: ``step-00000120.pt`` for periodic and epoch-end
checkpoints, ``final.pt`` at the end. Everything in a checkpoint is plain tensors, numbers, strings,
lists and dicts, so it loads with ``torch.load(..., weights_only=True)``. Every path that reads one
(resume, eval, export, stage carry, analysis) goes through :func:`read_checkpoint`.

Example:
    >>> import tempfile, pathlib
    >>> folder = CheckpointDir(pathlib.Path(tempfile.mkdtemp()), keep=2)
    >>> for step in (10, 20, 30):
    ...     _ = folder.save({"step": step}, step=step)
    >>> [p.name for p in folder.periodic()], load_checkpoint(folder.latest())["step"]
    (['step-00000020.pt', 'step-00000030.pt'], 30)
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contrastkit.errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointDir",
    "capture_rng_state",
    "first_nonfinite",
    "load_checkpoint",
    "nonfinite_in_checkpoint",
    "read_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "state_dict_mismatch",
]

#: Version of the training checkpoint layout that ``--resume`` reads.
CHECKPOINT_FORMAT = 2
_PERIODIC = re.compile(r"^step-(\d+)\.pt$")
_STALE_TMP = re.compile(r"^\..+\.pt\..*\.tmp$")  # what save_checkpoint's mkstemp names look like


def _fsync_dir(folder: Path) -> None:
    # The rename is only durable once the directory entry is on disk (POSIX; no-op where unsupported).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically: a temp file in the same folder, fsync, then rename.

    A crash or kill mid-write leaves the previous file at ``path`` untouched and no partial file; the
    folder is fsynced after the rename. A write that fails (disk full, read-only folder) raises
    :class:`CheckpointError` naming ``path`` and leaves the previous file as it was.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"step": 3}); load_checkpoint(p)["step"]
        3
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot write: {exc.strerror or exc}; make {path.parent} a writable "
                              "folder") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, NotImplementedError):
            # torch.save reports a full disk as RuntimeError ("... file write failed").
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            kept = "the previous file is unchanged" if path.is_file() else "no partial file is left"
            raise CheckpointError(f"{path}: cannot write: {detail} ({kept}); free space or choose another "
                                  "train.out_dir") from None
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs); faults raise as torch raises them.

    Use :func:`read_checkpoint` wherever a user's file is read: it turns every fault into one line.

    Example:
        >>> import tempfile, pathlib, torch
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"model": {"w": torch.ones(2)}})
        >>> load_checkpoint(p)["model"]["w"].tolist()
        [1.0, 1.0]
    """
    return torch.load(path, map_location=map_location, weights_only=True)


def _load_problem(exc: BaseException, *, zip_header: bool) -> str:
    text = str(exc).strip()
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        return (f"holds a pickled Python object ({unsafe.group(1)}) that the safe loader refuses, so it was not "
                "written by contrastkit; do not load it with weights_only=False unless you trust its source: save "
                "the weights as a plain state dict instead")
    if isinstance(exc, EOFError) or zip_header or "central directory" in text or "failed reading zip" in text:
        # torch files are zip archives: a good header with unreadable contents is a cut-off copy
        return "truncated or damaged (e.g. a killed copy); delete it and use an earlier checkpoint"
    return "not a torch checkpoint file (unreadable contents); point to a file from <train.out_dir>/checkpoints/"


def read_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu",
                    resumable: bool = False) -> dict[str, Any]:
    """Read a contrastkit checkpoint; every fault is one :class:`CheckpointError` line ``file: what; what to do``.

    Missing, a folder, empty, truncated, foreign (not a dict with a ``model`` state dict), refused by the
    safe loader, or, with ``resumable``, written by another checkpoint format: each gets its own line.
    Nothing is unpickled beyond tensors and plain containers (``weights_only=True``).

    Example:
        >>> read_checkpoint("no/such.pt")
        Traceback (most recent call last):
        ...
        contrastkit.errors.CheckpointError: no/such.pt: checkpoint not found; train first or pass --checkpoint
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"model": {"w": torch.ones(2)}})
        >>> read_checkpoint(p)["model"]["w"].tolist()
        [1.0, 1.0]
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; pass a .pt file such as "
                              f"{path / 'final.pt'}")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train first or pass --checkpoint")
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: empty file (0 bytes); delete it and use an earlier checkpoint")
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except PermissionError:
        raise CheckpointError(f"{path}: not readable (permission denied); fix its permissions") from None
    except Exception as exc:  # noqa: BLE001 - every other fault of a user's file is reported as one line
        with open(path, "rb") as fh:
            zip_header = fh.read(4) == b"PK\x03\x04"
        raise CheckpointError(f"{path}: {_load_problem(exc, zip_header=zip_header)}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), Mapping):
        raise CheckpointError(f"{path}: not a contrastkit checkpoint (no 'model' state dict); pass a file from "
                              "<train.out_dir>/checkpoints/")
    if resumable and (payload.get("format") != CHECKPOINT_FORMAT or "rng" not in payload):
        raise CheckpointError(
            f"{path}: not a resumable checkpoint (format {payload.get('format')!r}, this contrastkit resumes format "
            f"{CHECKPOINT_FORMAT}); train into a new train.out_dir, or eval/export it instead"
        )
    return payload


def first_nonfinite(named: Iterable[tuple[str, Tensor]]) -> str | None:
    """The name of the first floating tensor holding NaN or inf, or ``None``; one host sync for all of them.

    Example:
        >>> first_nonfinite([("a", torch.ones(2)), ("b", torch.tensor([1.0, float("inf")])), ("n", torch.ones(1, dtype=torch.long))])
        'b'
    """
    names, flags = [], []
    for name, tensor in named:
        if isinstance(tensor, Tensor) and tensor.is_floating_point() and tensor.numel():
            names.append(name)
            flags.append(torch.isfinite(tensor).all())
    if not flags:
        return None
    ok = torch.stack([f.to(flags[0].device) for f in flags]).cpu()
    bad = (~ok).nonzero()
    return names[int(bad[0])] if len(bad) else None


def _tensors(tree: Any, prefix: str) -> Iterable[tuple[str, Tensor]]:
    if isinstance(tree, Tensor):
        yield prefix, tree
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _tensors(value, f"{prefix}.{i}")


def nonfinite_in_checkpoint(payload: Mapping[str, Any]) -> str | None:
    """Where a checkpoint's weights, buffers or optimizer state hold NaN or inf (``model.encoders.0.bn.running_var``).

    Example:
        >>> nonfinite_in_checkpoint({"model": {"w": torch.ones(1)}, "optimizer": {"state": {0: {"exp_avg": torch.tensor([float("nan")])}}}})
        'optimizer.state.0.exp_avg'
    """
    parts = {key: payload.get(key) for key in ("model", "optimizer", "view_optimizer") if payload.get(key) is not None}
    return first_nonfinite(_tensors(parts, ""))


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

    def newest_first(self) -> list[Path]:
        """Every checkpoint, the highest step first (``final.pt`` before a periodic one of the same step).

        ``final.pt``'s step is read from the file (only when periodic checkpoints exist too): a run
        extended past its end (``max_steps`` raised) writes periodic checkpoints newer than it. An
        unreadable ``final.pt`` sorts first, so that whoever reads it reports it.
        """
        periodic = self.periodic()
        ranked: list[tuple[float, int, Path]] = [
            (int(_PERIODIC.match(p.name).group(1)), 0, p) for p in periodic  # type: ignore[union-attr]
        ]
        if self.final.is_file():
            step = float("inf")
            if periodic:
                with contextlib.suppress(CheckpointError):
                    step = int(read_checkpoint(self.final).get("step", 0))
            ranked.append((step, 1, self.final))
        return [p for _, _, p in sorted(ranked, key=lambda r: (r[0], r[1]), reverse=True)]

    def latest(self) -> Path | None:
        """The newest checkpoint by step, whatever its name (see :meth:`newest_first`)."""
        ranked = self.newest_first()
        return ranked[0] if ranked else None

    def newest_valid(self, *, map_location: str | torch.device = "cpu",
                     resumable: bool = True) -> tuple[Path | None, dict[str, Any] | None, list[str]]:
        """The newest checkpoint that reads and holds only finite values: ``(path, payload, skipped)``.

        ``skipped`` has one line per newer file passed over (truncated, empty, non-finite, ...).

        Example:
            >>> import tempfile, pathlib
            >>> folder = CheckpointDir(pathlib.Path(tempfile.mkdtemp()))
            >>> _ = folder.save({"model": {"w": torch.ones(1)}}, step=1)
            >>> _ = (folder.path / "step-00000002.pt").write_bytes(b"")
            >>> path, payload, skipped = folder.newest_valid(resumable=False)
            >>> path.name, len(skipped)
            ('step-00000001.pt', 1)
        """
        skipped: list[str] = []
        for path in self.newest_first():
            try:
                payload = read_checkpoint(path, map_location=map_location, resumable=resumable)
            except CheckpointError as exc:
                skipped.append(str(exc))
                continue
            where = nonfinite_in_checkpoint(payload)
            if where is not None:
                skipped.append(f"{path}: {where} holds NaN or inf; not resumable")
                continue
            return path, payload, skipped
        return None, None, skipped

    def remove_stale_tmp(self) -> list[Path]:
        """Delete leftovers of saves that were killed mid-write (``.NAME.pt.XXXX.tmp``); returns them."""
        if not self.path.is_dir():
            return []
        stale = [p for p in self.path.iterdir() if _STALE_TMP.match(p.name) and p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

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
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the global RandomState is MT19937: its legacy state is a tuple
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
