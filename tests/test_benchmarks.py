"""Smoke tests of ``benchmarks/overhead.py``: it runs both sides and prints the table and the ratio line."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"
# Tiny settings: a handful of steps on 16-pixel images, one thread (a loaded 2-core box slows
# multi-threaded small convolutions down by an order of magnitude).
TINY = ["--steps", "3", "--repeats", "1", "--warmup-steps", "1", "--device", "cpu", "--batch-size", "8",
        "--image-size", "16", "--data-size", "32", "--threads", "1"]
RATIO_LINE = re.compile(r"^overhead ratio \(contrastkit / bare PyTorch\): (\d+\.\d{3})  \(target <= 1\.02\)$")


@pytest.fixture(scope="module")
def overhead() -> Iterator[ModuleType]:
    """The script loaded as a module (in-process: no second torch import); restores torch's thread count."""
    spec = importlib.util.spec_from_file_location("ck_benchmark_overhead", SCRIPT)
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


def test_prints_table_and_ratio_line(overhead: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert overhead.main([*TINY, "--json", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("device: cpu") and f"torch {torch.__version__}" in lines[0]
    match = RATIO_LINE.match(lines[-1])
    assert match is not None, lines[-1]
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("bare PyTorch", "contrastkit "))}
    assert set(rows) == {"bare", "contrastkit"}
    bare_ms, framework_ms = float(rows["bare"][2]), float(rows["contrastkit"][1])
    assert bare_ms > 0 and framework_ms > 0
    assert float(match.group(1)) == pytest.approx(framework_ms / bare_ms, abs=2e-3)
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["bare_ms_per_step"]) == len(report["contrastkit_ms_per_step"]) == 1
    assert report["ratio"] == pytest.approx(float(match.group(1)), abs=1e-3)


def test_both_sides_time_the_same_window(overhead: ModuleType, tmp_path: Path) -> None:
    """The step clock sees exactly ``steps_per_run`` forward calls on both sides (same work counted)."""
    settings = overhead.Settings(device="cpu", batch_size=8, steps=2, warmup_steps=1, image_size=16, data_size=32)
    dataset = overhead.Pipeline.from_config(overhead.make_config(settings, out_dir=".", data_size=32)).dataset
    device = torch.device("cpu")
    calls = []
    for side in ("bare", "contrastkit"):
        config = overhead.make_config(settings, out_dir=str(tmp_path / side), data_size=32)
        clock = overhead.StepClock(device, start=1, stop=3)
        if side == "bare":
            seconds = overhead.run_bare(config, dataset, device, clock)
        else:
            seconds = overhead.run_framework(config, dataset, clock)
        assert seconds > 0
        calls.append(clock.calls)
    assert calls == [settings.steps_per_run, settings.steps_per_run]


def test_fp16_on_cpu_is_refused(overhead: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        overhead.main(["--device", "cpu", "--precision", "fp16"])
    assert exc.value.code == 2
    assert "--precision: fp16 autocast is for GPUs" in capsys.readouterr().err
