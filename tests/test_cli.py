"""The ``contrastkit`` command line, run as a real subprocess (``python -m contrastkit``).

Every run uses a small dataset and encoder and its own temporary working directory, so nothing is
written into the repository. Each subprocess spends most of its time importing torch and the
plugins, so the module fixture starts every command up front, two at a time, and each test waits
for its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
import torch

from contrastkit import Pipeline, __version__
from contrastkit.config import load_config
from contrastkit.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.toml"
SMALL = ["data.size=256", "train.batch_size=32", "encoder.width=8"]

BAD_RECIPES = {
    # caught by load_config (typed tables)
    "load-stage": ('[train]\nepochs = "ten"\n', "train.epochs: expected an integer (got 'ten')"),
    # caught while building the pipeline (a plugin factory raises InvalidParameter)
    "build-stage": (
        "[data]\nsize = 64\n[encoder]\nwidth = 4\n[critic]\ntemperature = -1.0\n",
        "critic.temperature: must be > 0 (got -1.0)",
    ),
}


def sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def run_contrastkit(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contrastkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        # two runs share the cores: one intra-op thread each avoids oversubscription
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        timeout=240,
    )


@attrs.define
class Run:
    """One CLI invocation: its working directory, arguments and (eventually) its result."""

    cwd: Path
    args: list[str]
    overrides: list[str] = attrs.field(factory=list)
    future: Future[subprocess.CompletedProcess[str]] | None = None

    def result(self) -> subprocess.CompletedProcess[str]:
        assert self.future is not None
        return self.future.result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    def workdir(name: str) -> Path:
        return tmp_path_factory.mktemp(name)

    train_cwd = workdir("train")
    train_overrides = [
        *SMALL,
        "train.max_steps=6",
        "log.every_n_steps=2",
        f"train.out_dir={json.dumps(str(train_cwd / 'run'))}",
    ]
    planned: dict[str, Run] = {  # longest first, so the short ones fill the other worker
        "train": Run(train_cwd, ["train", str(QUICKSTART), *sets(train_overrides), "--quiet"], train_overrides),
        "dry-run": Run(workdir("dry"), ["train", str(QUICKSTART), *sets(SMALL), "--dry-run"]),
        "plugins-json": Run(workdir("pj"), ["plugins", "--json"]),
        "plugins": Run(workdir("pt"), ["plugins"]),
        "bad-set": Run(workdir("set"), ["train", str(QUICKSTART), "--set", "train.lr"]),
        "version": Run(workdir("version"), ["--version"]),
    }
    blocked = workdir("blocked")
    (blocked / "a-file").write_text("")
    planned["dry-run-blocked"] = Run(blocked, ["train", str(QUICKSTART), *sets(SMALL), "--dry-run", "--set",
                                               f"train.out_dir={json.dumps(str(blocked / 'a-file' / 'run'))}"])
    for name, (text, _) in BAD_RECIPES.items():
        cwd = workdir(name)
        (cwd / "bad.toml").write_text(text)
        planned[f"bad-{name}"] = Run(cwd, ["train", str(cwd / "bad.toml")])

    with ThreadPoolExecutor(max_workers=2) as pool:
        for run in planned.values():
            run.future = pool.submit(run_contrastkit, run.args, run.cwd)
        yield planned
        for run in planned.values():
            if run.future is not None:  # deselected tests: drop queued runs; running ones finish first
                run.future.cancel()


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("case", list(BAD_RECIPES))
def test_bad_recipe_is_one_error_line_exit_2(runs: dict[str, Run], case: str) -> None:
    run = runs[f"bad-{case}"]
    proc = run.result()
    recipe = run.cwd / "bad.toml"
    line = assert_one_line_error(proc)
    assert line == f"error: {recipe}: {BAD_RECIPES[case][1]}"
    assert proc.stdout == ""
    assert sorted(p.name for p in run.cwd.iterdir()) == ["bad.toml"]  # no run directory, no checkpoint


def test_dry_run_stops_where_the_run_would_on_an_unwritable_out_dir(runs: dict[str, Run]) -> None:
    run = runs["dry-run-blocked"]
    line = assert_one_line_error(run.result())
    blocker = run.cwd / "a-file"
    assert line == f"error: {blocker / 'run'}: sits under the file {blocker}; set train.out_dir to a folder path"


def test_malformed_set_is_one_error_line(runs: dict[str, Run]) -> None:
    line = assert_one_line_error(runs["bad-set"].result())
    assert line == f"error: {QUICKSTART}: --set 'train.lr': expected KEY=VALUE, e.g. --set train.max_steps=20"


def test_dry_run_describes_the_pipeline_and_writes_nothing(runs: dict[str, Run]) -> None:
    run = runs["dry-run"]
    proc = run.result()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "colorful-moving-digits: 256 samples" in out
    assert "image-pair: 2 views, channels (3, 3)" in out
    assert "pairs v1-v2" in out
    assert "augment      none" in out
    assert "encoder v1   convnet (shared): in_channels 3 -> features 64" in out
    assert "encoder v2   convnet (shared): in_channels 3 -> features 64" in out
    assert "embedding 64" in out and "temperature 0.2" in out
    assert "in-batch" in out
    assert "infonce (two-way)" in out
    assert "regularizer  none" in out
    assert "v1 (32, 3, 32, 32), v2 (32, 3, 32, 32)" in out
    assert "dry run ok: one batch of 32" in out
    # train.out_dir defaults to runs/quickstart under the working directory: nothing was written
    assert list(run.cwd.iterdir()) == []


def test_short_training_run_writes_tensorboard_and_a_loadable_checkpoint(runs: dict[str, Run]) -> None:
    run = runs["train"]
    proc = run.result()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out_dir = run.cwd / "run"
    tb_dir = out_dir / "tensorboard"
    checkpoint = out_dir / "checkpoints" / "final.pt"
    assert f"TensorBoard logs: {tb_dir}" in proc.stdout
    assert f"Checkpoint: {checkpoint}" in proc.stdout
    assert "trained 6 steps" in proc.stdout
    assert "I_NCE lower bound v1-v2:" in proc.stdout
    assert sorted(p.name for p in run.cwd.iterdir()) == ["run"]  # train.out_dir was honoured

    # TensorBoard scalars, logged every 2 steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(tb_dir.glob("events.out.tfevents.*"))
    assert events, f"no events file in {tb_dir}"
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"loss", "loss/v1-v2", "mi_lower_bound/v1-v2", "lr", "images_per_second", "data_wait_fraction"} <= tags
    assert [e.step for e in accumulator.Scalars("loss")] == [2, 4, 6]
    # the recipe's warm-up (30 steps: all 6 steps are inside it), read after each optimizer step
    from contrastkit.optim import warmup_cosine

    expected = [0.002 * warmup_cosine(s, total_steps=6, warmup_steps=30) for s in (2, 4, 6)]
    assert expected == pytest.approx([0.002 * (s + 1) / 30 for s in (2, 4, 6)])
    assert [e.value for e in accumulator.Scalars("lr")] == pytest.approx(expected, abs=1e-7)
    assert "views/v1" in accumulator.Tags()["images"] and "views/v2" in accumulator.Tags()["images"]

    # the checkpoint: weights only, step 6, a state dict that fits a freshly built pipeline
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert payload["step"] == 6
    assert payload["config"]["train"]["max_steps"] == 6
    fresh = Pipeline.from_config(load_config(QUICKSTART, run.overrides), path=str(QUICKSTART))
    result = fresh.load_state_dict(payload["model"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in payload["model"].items():
        assert torch.equal(fresh.state_dict()[key].cpu(), value.cpu()), key


def test_plugins_json_lists_every_kind(runs: dict[str, Run]) -> None:
    proc = runs["plugins-json"].result()
    assert proc.returncode == 0, proc.stderr
    plugins = json.loads(proc.stdout)
    assert isinstance(plugins, list)
    by_name = {p["name"]: p for p in plugins}
    core = by_name["contrastkit"]
    assert core["distribution"] == "contrastkit"
    assert core["version"] == __version__
    assert core["error"] is None
    for kind in KINDS:
        assert isinstance(core[kind], list) and core[kind], f"no {kind} in {core}"
        assert all(isinstance(name, str) and name for name in core[kind])
    assert "color-split" in core["view_makers"]
    assert "infonce" in core["objectives"]
    assert "in-batch" in core["negative_samplers"]


def test_plugins_table(runs: dict[str, Run]) -> None:
    proc = runs["plugins"].result()
    assert proc.returncode == 0, proc.stderr
    assert "color-split" in proc.stdout
    assert "contrastkit" in proc.stdout
    assert "view_makers" in proc.stdout


def test_version(runs: dict[str, Run]) -> None:
    proc = runs["version"].result()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"contrastkit {__version__}"
