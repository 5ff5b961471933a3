"""Smoke tests of ``benchmarks/training.py``: a tiny SimCLR run prints the summary line, the JSON agrees."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "training.py"
# The recipe with a tiny convnet on 16-pixel images, a handful of steps, one thread (a loaded 2-core
# box slows multi-threaded small convolutions down by an order of magnitude).
TINY = ["--device", "cpu", "--encoder", "convnet", "--set", "encoder.width=8", "--set", "data.image_size=16",
        "--set", "data.size=32", "--batch", "8", "--steps", "2", "--warmup", "1", "--repeats", "2",
        "--threads", "1"]
NUMBER = r"(\d+\.\d+)"
SUMMARY_LINE = re.compile(
    rf"^summary: {NUMBER} images/s, {NUMBER} ms/step, encoders fwd\+bwd {NUMBER} ms/step, outside {NUMBER} "
    r"\(target <= 0\.10 is for GPUs; not applicable on cpu\)$"
)


@pytest.fixture(scope="module")
def training() -> Iterator[ModuleType]:
    """The script loaded as a module (in-process: no second torch import); restores torch's thread count."""
    spec = importlib.util.spec_from_file_location("ck_benchmark_training", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes look their module up while being built
    threads = torch.get_num_threads()
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        torch.set_num_threads(threads)


def test_summary_line_and_json(training: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert training.main([*TINY, "--json", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("device: cpu") and f"torch {torch.__version__}" in lines[0]
    assert "encoder convnet, batch 8" in lines[1]  # the header says which batch and encoder ran
    match = SUMMARY_LINE.match(lines[-1])
    assert match is not None, lines[-1]
    images_per_s, ms_per_step, encoder_ms, outside = map(float, match.groups())
    assert ms_per_step > 0 and 0 < encoder_ms < ms_per_step
    assert 0.0 <= outside <= 1.0
    assert images_per_s == pytest.approx(8 * 1000.0 / ms_per_step, rel=1e-3)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["encoder"] == "convnet" and report["settings"]["batch"] == 8 and not report["target_applies"]
    assert len(report["runs"]) == 2
    for run in report["runs"]:
        assert run["encoder_ms"] == pytest.approx(run["forward_ms"] + run["backward_ms"])
        assert run["forward_ms"] > 0 and run["backward_ms"] > 0
        assert run["fraction_outside"] == pytest.approx(1 - run["encoder_ms"] / run["ms_per_step"])
    assert report["median_ms_per_step"] == pytest.approx(ms_per_step, abs=1e-3)
    assert report["median_fraction_outside"] == pytest.approx(outside, abs=1e-3)


def test_config_overrides(training: ModuleType, tmp_path: Path) -> None:
    """Benchmark overrides applied, the encoder table replaced, the data enlarged to one epoch, --set wins."""
    settings = training.Settings(device="cpu", batch=16, steps=3, warmup=2, encoder="convnet",
                                 overrides=["data.size=20", "log.every_n_steps=7"])
    config = training.make_config(settings, out_dir=str(tmp_path))
    assert config.encoder.name == "convnet" and config.encoder.params == {"shared": True}
    assert config.train.max_steps == 6 and config.train.batch_size == 16 and config.train.out_dir == str(tmp_path)
    assert not (config.log.tensorboard or config.log.progress or config.eval.knn or config.eval.linear)
    assert config.log.every_n_steps == 7
    assert config.data.params["size"] == 6 * 16  # enlarged: one epoch holds the whole run
    assert config.augment.name == "simclr" and config.train.optimizer == "lars"  # the rest is the recipe's


class _Sleep(nn.Module):
    """A module that takes a known host time in forward and in backward (CPU: the host clock is the work's)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return _SleepGrad.apply(x * self.weight, self.seconds)


class _SleepGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor, seconds: float) -> torch.Tensor:
        ctx.seconds = seconds  # type: ignore[attr-defined]
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        time.sleep(ctx.seconds)  # type: ignore[attr-defined]
        return grad, None


def test_step_timer_splits_encoder_and_other_time(training: ModuleType) -> None:
    """Known sleeps: two shared-encoder calls (fwd 10 ms, bwd 20 ms each) plus 30 ms outside per step."""
    pipeline = nn.Module()
    pipeline.encoders = nn.ModuleList([_Sleep(0.01), _Sleep(0.01)])

    def forward(x: torch.Tensor) -> torch.Tensor:
        features = [pipeline.encoders[0](x), pipeline.encoders[0](x), pipeline.encoders[1](x)]
        time.sleep(0.03)  # outside the encoders
        return sum(f.sum() for f in features)

    pipeline.forward = forward
    timer = training.StepTimer(torch.device("cpu"), start=1, stop=3).attach(pipeline)
    for _ in range(4):
        pipeline(torch.ones(3)).backward()
    assert timer.gradients_per_step == 2  # encoder 0's weight (once, summed over its two calls) and encoder 1's
    # Naive expectation: 3 encoder calls x 10 ms forward, 3 x 10 ms backward, 30 ms elsewhere.
    assert timer.forward_ms == pytest.approx(30.0, abs=8.0)
    assert timer.backward_ms == pytest.approx(30.0, abs=8.0)
    assert timer.ms_per_step == pytest.approx(90.0, abs=15.0)
    run = training.RunResult(timer.ms_per_step, timer.forward_ms, timer.backward_ms)
    assert run.fraction_outside == pytest.approx(1 / 3, abs=0.1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps: must be >= 1 (got 0)"),
        (["--warmup", "0"], "--warmup: must be >= 1 (got 0)"),
        (["--batch", "1"], "--batch: must be >= 2 (got 1)"),
        (["--threads", "-1"], "--threads: must be >= 0 (got -1)"),
        (["--set", "train.lr"], "expected KEY=VALUE"),
    ],
)
def test_bad_arguments_exit_2(
    training: ModuleType, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        training.main(["--device", "cpu", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
