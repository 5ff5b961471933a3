"""The ``contrastkit`` command line, run as a real subprocess (``python -m contrastkit``).

Every run uses a small dataset and encoder and runs in a temporary working directory, so nothing is
written into the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastkit import Pipeline, __version__
from contrastkit.config import load_config
from contrastkit.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.toml"
SMALL = ["data.size=256", "train.batch_size=32", "encoder.width=8"]


def sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def contrastkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "contrastkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=240,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # caught by load_config (typed tables)
        ('[train]\nepochs = "ten"\n', "train.epochs: expected an integer (got 'ten')"),
        # caught while building the pipeline (a plugin factory's InvalidParameter)
        (
            "[data]\nsize = 64\n[encoder]\nwidth = 4\n[critic]\ntemperature = -1.0\n",
            "critic.temperature: must be > 0 (got -1.0)",
        ),
    ],
    ids=["load-stage", "build-stage"],
)
def test_bad_recipe_is_one_error_line_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    proc = contrastkit("train", str(recipe), cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert line == f"error: {recipe}: {expected}"
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # no run directory, no checkpoint


def test_malformed_set_is_one_error_line(tmp_path: Path) -> None:
    proc = contrastkit("train", str(QUICKSTART), "--set", "train.lr", cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert line == f"error: {QUICKSTART}: --set 'train.lr': expected KEY=VALUE, e.g. --set train.max_steps=20"


def test_dry_run_describes_the_pipeline_and_writes_nothing(tmp_path: Path) -> None:
    proc = contrastkit("train", str(QUICKSTART), *sets(SMALL), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "colorful-moving-digits: 256 samples" in out
    assert "color-split: 2 views, channels (1, 2)" in out
    assert "pairs v1-v2" in out
    assert "crop-flip" in out
    assert "encoder v1   convnet: in_channels 1 -> features 64" in out
    assert "encoder v2   convnet: in_channels 2 -> features 64" in out
    assert "embedding 64" in out and "temperature 0.1" in out
    assert "in-batch" in out
    assert "infonce (two-way)" in out
    assert "regularizer  none" in out
    assert "v1 (32, 1, 32, 32), v2 (32, 2, 32, 32)" in out
    assert "dry run ok: one batch of 32" in out
    assert "Traceback" not in proc.stderr
    # the run directory defaults to runs/quickstart under the working directory: nothing was written
    assert list(tmp_path.iterdir()) == []


def test_short_training_run_writes_tensorboard_and_a_loadable_checkpoint(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    overrides = [*SMALL, "train.max_steps=6", "log.every_n_steps=2", f"train.out_dir={json.dumps(str(out_dir))}"]
    proc = contrastkit("train", str(QUICKSTART), *sets(overrides), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    tb_dir = out_dir / "tensorboard"
    checkpoint = out_dir / "checkpoints" / "final.pt"
    assert f"TensorBoard logs: {tb_dir}" in proc.stdout
    assert f"Checkpoint: {checkpoint}" in proc.stdout
    assert "trained 6 steps" in proc.stdout
    assert "I_NCE lower bound v1-v2:" in proc.stdout
    assert not (tmp_path / "runs").exists()  # train.out_dir was honoured

    # TensorBoard scalars, logged every 2 steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(tb_dir.glob("events.out.tfevents.*"))
    assert events, f"no events file in {tb_dir}"
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"loss", "loss/v1-v2", "mi_lower_bound/v1-v2", "lr"} <= tags
    assert [e.step for e in accumulator.Scalars("loss")] == [2, 4, 6]
    assert all(e.value == pytest.approx(0.002) for e in accumulator.Scalars("lr"))

    # the checkpoint: weights only, step 6, a state dict that fits a freshly built pipeline
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert payload["step"] == 6
    assert payload["config"]["train"]["max_steps"] == 6
    fresh = Pipeline.from_config(load_config(QUICKSTART, overrides), path=str(QUICKSTART))
    result = fresh.load_state_dict(payload["model"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    first = next(iter(payload["model"]))
    assert torch.equal(fresh.state_dict()[first].cpu(), payload["model"][first].cpu())


def test_plugins_json_lists_every_kind(tmp_path: Path) -> None:
    proc = contrastkit("plugins", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plugins = json.loads(proc.stdout)
    assert isinstance(plugins, list)
    by_name = {p["name"]: p for p in plugins}
    core = by_name["contrastkit"]
    assert core["distribution"] == "contrastkit"
    assert core["version"] == __version__
    assert core["error"] is None
    assert set(KINDS) == {
        "datasets",
        "augmentations",
        "view_makers",
        "encoders",
        "critics",
        "negative_samplers",
        "objectives",
        "regularizers",
    }
    for kind in KINDS:
        assert isinstance(core[kind], list) and core[kind], f"no {kind} in {core}"
        assert all(isinstance(name, str) and name for name in core[kind])
    assert "color-split" in core["view_makers"]
    assert "infonce" in core["objectives"]
    assert "in-batch" in core["negative_samplers"]


def test_plugins_table(tmp_path: Path) -> None:
    proc = contrastkit("plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "color-split" in proc.stdout
    assert "contrastkit" in proc.stdout
    assert "view_makers" in proc.stdout


def test_version(tmp_path: Path) -> None:
    proc = contrastkit("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"contrastkit {__version__}"

