"""Smoke test of ``benchmarks/experiment_jobs.py``: both sides train, the printed figures and the JSON agree."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "experiment_jobs.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """The script loaded as a module (the test run's sys.path need not hold the checkout)."""
    spec = importlib.util.spec_from_file_location("ck_benchmark_experiment_jobs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_both_sides_train_every_run_and_report_the_ratio(bench: ModuleType, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "jobs.json"
    assert bench.main(["--runs", "2", "--steps", "2", "--size", "256", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert (figures["runs"], figures["steps"], figures["jobs"]) == (2, 2, 2)
    assert figures["one_process_seconds"] > 0 and figures["jobs_seconds"] > 0
    assert figures["speedup"] == pytest.approx(figures["one_process_seconds"] / figures["jobs_seconds"], rel=0.02)
    printed = capsys.readouterr().out
    assert f"speed-up (one process / jobs): {figures['speedup']:.3f}" in printed


def test_the_benchmark_recipe_is_the_negatives_cpu_arm_shortened(bench: ModuleType) -> None:
    from contrastkit.experiments import negatives

    recipe = bench.bench_recipe(steps=7, size=512)
    arm = negatives.recipe(256)
    assert recipe["train"]["max_steps"] == 7 and recipe["data"]["size"] == 512
    for table in ("views", "encoder", "critic", "negatives", "objective", "eval"):
        assert recipe[table] == arm[table], table


@pytest.mark.parametrize("args", [["--jobs", "1"], ["--runs", "0"], ["--size", "16"]])
def test_bad_arguments_exit_2(bench: ModuleType, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(args) == 2
    assert capsys.readouterr().err.count("\n") == 1
