"""Fixtures of the fault corpus: a finished tiny run to break, file snapshots, and the CLI run in-process."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from contrastkit.cli import main

RECIPE = """\
[data]
name = "colorful-moving-digits"
size = 64

[encoder]
name = "convnet"
width = 4
depth = 2

[train]
max_steps = 4
batch_size = 16
device = "cpu"
checkpoint_every_n_steps = 2
out_dir = "{out_dir}"

[eval]
knn = false

[log]
progress = false
tensorboard = false
"""


@dataclass(frozen=True)
class Run:
    """A finished 4-step run: its recipe, run folder and checkpoints (step-2, step-4, final)."""

    recipe: Path
    out_dir: Path

    @property
    def checkpoints(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def final(self) -> Path:
        return self.checkpoints / "final.pt"


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one ``error:`` line on stderr, after checking there is nothing else and no traceback."""
        assert self.status == 2, (self.status, self.out, self.err)
        assert "Traceback" not in self.err and "Traceback" not in self.out
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


def write_recipe(folder: Path, out_dir: Path, text: str = RECIPE) -> Path:
    recipe = folder / "tiny.toml"
    recipe.write_text(text.format(out_dir=out_dir.as_posix()))
    return recipe


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256): what a fault must leave unchanged."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("faults-origin")
    recipe = write_recipe(folder, folder / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(recipe), "--quiet"]) == 0
    return Run(recipe, folder / "run")


@pytest.fixture
def run(finished_run: Run, tmp_path: Path) -> Run:
    """A private copy of the finished run (its recipe points at the copy)."""
    shutil.copytree(finished_run.out_dir, tmp_path / "run")
    return Run(write_recipe(tmp_path, tmp_path / "run"), tmp_path / "run")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run ``contrastkit ARGS`` in-process; argparse's own exit becomes a status like the shell's."""

    def invoke(*argv: str) -> Outcome:
        capsys.readouterr()
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: usage line + one error line, status 2
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return invoke
