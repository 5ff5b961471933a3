"""``torchrun --nproc_per_node 2 -m contrastkit train``: one set of outputs, a killed run resumes exactly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

RECIPE = """
[data]
name = "colorful-moving-digits"
size = 256
image_size = 16
digit_size = 8

[encoder]
name = "convnet"
width = {width}
depth = 2

[train]
batch_size = 8
max_steps = {steps}
device = "cpu"
deterministic = true
checkpoint_every_n_steps = 2
out_dir = "{out}"

[eval]
knn = true
linear = false
labels = ["digit"]

[log]
every_n_steps = 1
progress = false
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))  # keep what is set
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _recipe(tmp_path: Path, name: str, *, steps: int, width: int = 4) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(RECIPE.format(width=width, steps=steps, out=tmp_path / name))
    return path


def _train(recipe: Path, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    command = [*TORCHRUN[:-1], str(nproc), "-m", "contrastkit", "train", str(recipe), *extra]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)


def test_a_two_rank_run_writes_one_set_of_logs_and_checkpoints(tmp_path: Path) -> None:
    done = _train(_recipe(tmp_path, "run", steps=5))
    assert done.returncode == 0, done.stderr[-3000:]
    # Rank 0 alone reports: one summary, the effective batch, the probe.
    assert done.stdout.count("trained 5 steps") == 1
    assert "distributed: 2 processes (gloo), batch 8 per process x 1 accumulation -> effective batch 16" in done.stdout
    assert done.stdout.count("kNN digit top-1") == 1
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["final.pt", "step-00000002.pt",
                                                                        "step-00000004.pt"]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert not any(key.startswith("module.") for key in state["model"])  # unwrapped: eval/export read it
    evaluated = subprocess.run([sys.executable, "-m", "contrastkit", "eval", str(tmp_path / "run.toml"), "--json"],
                               env=_env(), capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    exported = subprocess.run([sys.executable, "-m", "contrastkit", "export", str(run / "checkpoints" / "final.pt"),
                               "--out", str(tmp_path / "encoder.safetensors")], env=_env(), capture_output=True,
                              text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    from contrastkit import Pipeline, load_config
    from contrastkit.export import load_encoder
    from contrastkit.training import load_checkpoint

    encoder = load_encoder(tmp_path / "encoder.safetensors", view=0)
    trained = Pipeline.from_config(load_config(tmp_path / "run.toml"))
    trained.load_state_dict(load_checkpoint(run / "checkpoints" / "final.pt")["model"])
    images = torch.rand(3, trained.encoders[0].in_channels, 16, 16)  # view 0's channels (L of L | ab)
    with torch.no_grad():  # the exported weights are the two-rank run's, not a fresh encoder's
        assert torch.equal(encoder(images), trained.eval().encoders[0](images))


def test_a_killed_two_rank_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    steps = 30
    whole = _train(_recipe(tmp_path, "whole", steps=steps, width=8))
    assert whole.returncode == 0, whole.stderr[-3000:]

    recipe = _recipe(tmp_path, "killed", steps=steps, width=8)
    command = [*TORCHRUN, "-m", "contrastkit", "train", str(recipe)]
    checkpoints = tmp_path / "killed" / "checkpoints"
    log = tmp_path / "killed.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(command, env=_env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        # Any periodic checkpoint will do: on a fast machine a given one can be written and pruned
        # (keep_checkpoints) between two looks.
        deadline = time.monotonic() + 240
        while not any(checkpoints.glob("step-*.pt")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):  # it had already ended: judged below
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
        proc.wait()
    if (checkpoints / "final.pt").exists():
        pytest.skip("the run finished before it could be killed (machine too fast for this test)")
    assert any(checkpoints.glob("step-*.pt")), log.read_text()[-3000:]

    resumed = _train(recipe, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    a = torch.load(tmp_path / "whole" / "checkpoints" / "final.pt", weights_only=True)
    b = torch.load(checkpoints / "final.pt", weights_only=True)
    assert a["step"] == b["step"] == steps
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=0, atol=1e-6, msg=name)


def test_resuming_with_another_process_count_is_refused(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "run", steps=3)
    assert _train(recipe).returncode == 0
    done = subprocess.run([sys.executable, "-m", "contrastkit", "train", str(recipe), "--resume"], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "written by 2 process(es), resumed with 1; resume with torchrun --nproc_per_node 2" in done.stderr
