"""The code-keyed cache of an experiment's runs: which code trained a record, and whether a saved record still holds.

Every seed of an arm keeps, in its folder, ``recipe.toml`` (its full recipe: rerun it alone with
``contrastkit train``) and a JSON record (``arm.json``: its probes, training figures and the
:func:`code_version` that trained it). A saved record is reused when the experiment is rerun only if
the recipe (seed included) and the code are both unchanged (``--fresh`` retrains), so an interrupted
experiment resumes where it stopped and a result of other code is never shown as this code's; a seed
interrupted mid-training resumes from its last checkpoint (:func:`mark_started`).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> saved_record(folder, "a = 1\\n", "arm.json", fresh=False) is None  # nothing saved: train, then write
    True
    >>> write_record(folder / "arm.json", {"steps": 2, "code": code_version()})
    >>> saved_record(folder, "a = 1\\n", "arm.json", fresh=False)["steps"]  # the same recipe and code: reuse
    2
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "banking_time", "clear_started", "code_version", "git_commit", "mark_started", "saved_record", "started_seconds",
    "write_record",
]

_STARTED = "started.json"


def _package_files() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return sorted(p for p in root.rglob("*") if p.suffix in {".py", ".json", ".toml"} and "__pycache__" not in p.parts)


@functools.cache
def code_version() -> str:
    """A fingerprint of the code that trains an arm: the SHA-256 (first 16 hex digits) of every source file
    of the installed ``contrastkit`` package, by path and content. A saved arm is reused only under the
    same fingerprint, so an edit anywhere in the package retrains.

    Example:
        >>> len(code_version()), code_version() == code_version()
        (16, True)
    """
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in _package_files():
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def git_commit() -> str:
    """The git commit of the package's checkout, with ``+dirty`` when its files differ from it ("" outside git).

    Example:
        >>> isinstance(git_commit(), str)
        True
    """
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "contrastkit"], cwd=root, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def saved_record(folder: Path, text: str, record_name: str, *, fresh: bool) -> dict[str, Any] | None:
    """The record saved in ``folder`` for the recipe ``text`` by this :func:`code_version`, else ``None`` (then
    ``recipe.toml`` holds ``text``, and no record, checkpoints or TensorBoard logs of another recipe or other
    code are left behind). An interrupted run of the same recipe by the same code (:func:`mark_started`)
    keeps its outputs, so that training resumes from its checkpoints; ``fresh`` clears them too.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False) is None
        True
        >>> _ = (d / "arm.json").write_text(json.dumps({"x": 1, "code": code_version()}))
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False)["x"], saved_record(d, "a = 2\\n", "arm.json", fresh=False)
        (1, None)
        >>> (d / "arm.json").exists()
        False
        >>> _ = (d / "arm.json").write_text(json.dumps({"x": 1, "code": "other code"}))
        >>> saved_record(d, "a = 2\\n", "arm.json", fresh=False) is None  # same recipe, trained by other code
        True
    """
    folder.mkdir(parents=True, exist_ok=True)
    recipe_path, record = folder / "recipe.toml", folder / record_name
    if not fresh and record.is_file() and recipe_path.is_file() and recipe_path.read_text() == text:
        try:
            saved = json.loads(record.read_text())
        except json.JSONDecodeError:
            saved = None  # a record cut short by a kill: train again
        if isinstance(saved, dict) and saved.get("code") == code_version():
            return saved
    record.unlink(missing_ok=True)
    if not fresh and recipe_path.is_file() and recipe_path.read_text() == text and started_seconds(folder) is not None:
        return None  # interrupted: its checkpoints are this recipe's and this code's
    recipe_path.write_text(text)
    clear_started(folder)
    for stale in folder.iterdir():  # another recipe's run outputs (stages too): curves and weights would mix in
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return None


def mark_started(folder: Path, seconds: float) -> None:
    """Record in ``folder`` that this :func:`code_version` trains its recipe, ``seconds`` of training so far.

    :func:`saved_record` then keeps the folder's checkpoints for a resume, and :func:`started_seconds`
    reads the time back, so a resumed run's record counts the time spent before the interruption
    (:func:`banking_time` re-marks while a run trains, so even a run killed outright loses at most one
    interval); :func:`clear_started` drops the mark once the record is written.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> started_seconds(d) is None
        True
        >>> mark_started(d, 12.5)
        >>> started_seconds(d)
        12.5
    """
    write_record(folder / _STARTED, {"code": code_version(), "seconds": round(seconds, 3)})


@contextlib.contextmanager
def banking_time(folder: Path, *, every: float = 30.0) -> Iterator[Callable[[], float]]:
    """Mark ``folder`` started and bank its training time there every ``every`` seconds while the block runs.

    Yields a clock: the seconds trained so far, those an interrupted earlier attempt banked included.
    A background thread re-marks the folder (:func:`mark_started`) every ``every`` seconds, and the
    block's end marks it once more, so a run killed outright (SIGKILL, the machine going down), which
    has no chance to bank its time at the end, still counts all but the last interval when it resumes.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> mark_started(d, 40.0)  # an earlier attempt trained 40 s
        >>> with banking_time(d) as trained:
        ...     trained() >= 40.0
        True
        >>> started_seconds(d) >= 40.0
        True
    """
    banked = started_seconds(folder) or 0.0
    start = time.perf_counter()

    def trained() -> float:
        return banked + time.perf_counter() - start

    mark_started(folder, banked)
    stop = threading.Event()

    def bank() -> None:
        while not stop.wait(every):
            try:
                mark_started(folder, trained())
            except OSError:
                # Best effort: the run goes on, and the mark at the block's end reports a folder gone bad.
                return

    # Only this thread writes the mark until it is joined: the two never race on the temporary file.
    thread = threading.Thread(target=bank, name=f"bank-time:{folder.name}", daemon=True)
    thread.start()
    try:
        yield trained
    finally:
        stop.set()
        thread.join()
        mark_started(folder, trained())


def clear_started(folder: Path) -> None:
    """Drop :func:`mark_started`'s mark from ``folder`` (its run finished and its record is written).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> mark_started(d, 3.0); clear_started(d); started_seconds(d) is None
        True
    """
    (folder / _STARTED).unlink(missing_ok=True)


def started_seconds(folder: Path) -> float | None:
    """The training seconds :func:`mark_started` banked in ``folder`` by this code, else ``None``.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "started.json").write_text(json.dumps({"code": "other code", "seconds": 9.0}))
        >>> started_seconds(d) is None  # started by other code: its checkpoints do not resume
        True
    """
    try:
        started = json.loads((folder / _STARTED).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(started, dict) or started.get("code") != code_version():
        return None
    seconds = started.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as JSON through a temporary file, so a kill never leaves half a record.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "arm.json"
        >>> write_record(path, {"steps": 2})
        >>> json.loads(path.read_text())
        {'steps': 2}
    """
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
