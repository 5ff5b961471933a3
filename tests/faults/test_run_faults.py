"""Run-folder and training faults: unwritable folders, a full disk, non-finite state, and kills.

Each ends in one ``error:`` line naming the folder or tensor, and the checkpoints already written stay
loadable and unchanged.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from contrastkit.config import config_from_dict
from contrastkit.errors import TrainingError
from contrastkit.training import Trainer
from contrastkit.training.checkpoint import CheckpointDir, load_checkpoint, nonfinite_in_checkpoint
from tests.faults.conftest import RECIPE, Outcome, Run, snapshot, write_recipe

ROOT = Path(__file__).resolve().parents[2]


def contrastkit_process(argv: list[str], *, preexec: Callable[[], None] | None = None,
                        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "contrastkit", *argv], capture_output=True, text=True, env=env,
                          preexec_fn=preexec, cwd=cwd, timeout=240, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
def test_an_out_dir_that_cannot_be_a_folder_is_one_line(where: str, tmp_path: Path,
                                                        cli: Callable[..., Outcome]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out_dir = blocker if where == "is-a-file" else blocker / "run"
    line = cli("train", str(write_recipe(tmp_path, out_dir)), "--quiet").error_line()
    assert str(out_dir) in line and "train.out_dir" in line
    assert blocker.read_text() == "a file"


def test_a_read_only_out_dir_is_one_line_before_training(tmp_path: Path, cli: Callable[..., Outcome]) -> None:
    if os.geteuid() != 0:  # an ordinary user: the folder's mode refuses the write
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o555)
    else:  # root writes through any mode; sysfs refuses even root
        parent = Path("/sys")
        if not parent.is_dir() or (os.access(parent, os.W_OK) and _can_create(parent)):
            pytest.skip("no folder here refuses root's writes")
    out_dir = parent / "ck-faults-run"
    line = cli("train", str(write_recipe(tmp_path, out_dir)), "--quiet").error_line()
    assert f"{out_dir}: cannot write the run folder" in line
    assert not out_dir.exists()


def _can_create(folder: Path) -> bool:
    try:
        (folder / "ck-faults-probe").mkdir()
    except OSError:
        return False
    (folder / "ck-faults-probe").rmdir()
    return True


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_at_a_save_is_one_line_and_keeps_the_earlier_checkpoints(run: Run) -> None:
    before = snapshot(run.out_dir)
    size = run.final.stat().st_size
    proc = contrastkit_process(["train", str(run.recipe), "--quiet", "--resume", "--set", "train.max_steps=6"],
                               preexec=_file_size_limit(size // 3))  # RLIMIT_FSIZE: writes past it fail (EFBIG)
    line = one_error_line(proc)
    assert "cannot write: File too large" in line and str(run.checkpoints) in line
    assert snapshot(run.out_dir) == before  # no temp file, no partial checkpoint, every file as it was
    assert load_checkpoint(run.final)["step"] == 4


def test_a_failed_final_save_keeps_the_previous_final(run: Run, monkeypatch: pytest.MonkeyPatch,
                                                      cli: Callable[..., Outcome]) -> None:
    import contrastkit.training.checkpoint as checkpoint_module

    previous = run.final.read_bytes()
    real_save = torch.save

    def save_failing_for_final(obj: object, fh: object) -> None:
        real_save(obj, fh)
        if isinstance(obj, dict) and obj.get("complete"):  # the final checkpoint's payload
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", save_failing_for_final)
    line = cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.max_steps=6").error_line()
    assert f"{run.final}: cannot write: No space left on device (the previous file is unchanged)" in line
    assert run.final.read_bytes() == previous
    assert load_checkpoint(run.checkpoints / "step-00000006.pt")["step"] == 6  # the work is not lost
    assert not list(run.checkpoints.glob(".*.tmp"))


class _PoisonBatchNorm(torch.nn.Module):
    """Fills the first batch-norm's running variance with inf from the ``after``-th forward on."""

    def __init__(self, module: torch.nn.Module, after: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after
        self.target = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))

    def hook(self, *_: object) -> None:  # a forward pre-hook: the previous backward is done
        self.calls += 1
        if self.calls >= self.after:
            self.target.running_var.fill_(float("inf"))


def test_non_finite_state_with_a_finite_loss_stops_and_names_the_buffer(tmp_path: Path) -> None:
    raw = {
        "data": {"name": "colorful-moving-digits", "size": 64},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"max_steps": 8, "batch_size": 16, "device": "cpu", "out_dir": str(tmp_path),
                  "checkpoint_every_n_steps": 2},
        "eval": {"knn": False}, "log": {"progress": False, "tensorboard": False, "every_n_steps": 100},
    }
    trainer = Trainer.from_config(config_from_dict(raw), print_fn=lambda _: None)
    # Poisoned before step 5's forward; the loss stays finite (train mode normalises by batch statistics),
    # the check before step 6's save catches it, and step 4's checkpoint is the last good one.
    poison = _PoisonBatchNorm(trainer.pipeline.encoders[0], after=5)
    trainer.pipeline.encoders[0].register_forward_pre_hook(poison.hook)
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "running_var became NaN or inf at step 6" in message
    assert "the last good checkpoint is" in message and "--allow-change train.lr" in message
    kept = Path(message.split("the last good checkpoint is ")[1].split(")")[0])
    assert kept.name == "step-00000004.pt"
    for path in CheckpointDir(tmp_path / "checkpoints").newest_first():
        assert nonfinite_in_checkpoint(load_checkpoint(path)) is None, f"{path} holds non-finite state"


def test_a_tiny_temperature_no_longer_ends_with_exit_0(tmp_path: Path, cli: Callable[..., Outcome]) -> None:
    recipe = tmp_path / "tiny.toml"
    text = RECIPE.replace("{out_dir}", (tmp_path / "run").as_posix())
    recipe.write_text(text + '\n[critic]\nname = "cosine"\ntemperature = 1e-30\n')
    outcome = cli("train", str(recipe), "--quiet", "--set", "train.lr=10.0")
    line = outcome.error_line()
    assert "became" in line and ("NaN" in line or "nan" in line or "inf" in line)
    for path in CheckpointDir(tmp_path / "run" / "checkpoints").newest_first():
        assert nonfinite_in_checkpoint(load_checkpoint(path)) is None


@pytest.mark.kill
def test_a_run_killed_mid_save_resumes_from_the_newest_valid_checkpoint(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tmp_path / "run", RECIPE.replace("max_steps = 4", "max_steps = 400")
                          .replace("checkpoint_every_n_steps = 2", "checkpoint_every_n_steps = 5"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "contrastkit", "train", str(recipe), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = CheckpointDir(tmp_path / "run" / "checkpoints")
    deadline = time.monotonic() + 120
    while len(folder.periodic()) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    newest = folder.periodic()[-1]
    (folder.path / f".{newest.name}.dead.tmp").write_bytes(b"half")  # what a kill inside a save leaves
    newest.write_bytes(newest.read_bytes()[:100])  # and a copy cut short by the kill
    done = contrastkit_process(["train", str(recipe), "--quiet", "--resume", "--set", "train.max_steps=30"])
    assert done.returncode == 0, done.stderr
    assert f"resume: skipped {newest}" in done.stdout and "removed " in done.stdout
    assert load_checkpoint(folder.final)["step"] == 30
    assert not list(folder.path.glob(".*.tmp"))


def test_a_bad_image_in_a_loader_worker_is_the_files_line_not_the_workers_traceback(
    tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    import numpy as np
    from PIL import Image

    images = tmp_path / "images" / "cls"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(images / f"{i:02d}.png")
    (images / "07.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    recipe = tmp_path / "images.toml"
    recipe.write_text(
        RECIPE.replace('name = "colorful-moving-digits"\nsize = 64',
                       f'name = "image-folder"\nroot = "{images.parent.as_posix()}"\nimage_size = 16')
        .replace('device = "cpu"', 'device = "cpu"\nnum_workers = 2')
        .replace("{out_dir}", (tmp_path / "run").as_posix()) + '\n[views]\nname = "augmented-copies"\n'
    )
    line = cli("train", str(recipe), "--quiet").error_line()
    assert line.startswith(f"error: {images / '07.png'}: cannot decode image")


def test_a_save_fsyncs_the_folder_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contrastkit.training.checkpoint as checkpoint_module

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").is_dir() else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(checkpoint_module.os, "fsync", recording_fsync)
    checkpoint_module.save_checkpoint(tmp_path / "c.pt", {"model": {}})
    assert synced[-1] == str(tmp_path), synced  # the folder, after the file itself
