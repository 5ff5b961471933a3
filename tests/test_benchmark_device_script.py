"""``benchmarks/device.sh``: the one prepared GPU run. Its command must stay valid as the scripts change."""

from __future__ import annotations

import importlib
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from benchmarks import run_all

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device.sh"


def dry_run_command() -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": "python3"}).stdout
    [line] = [line for line in out.splitlines() if line.startswith("+ ")]
    # The dry run prints the argv joined by spaces; each --args value is one "NAME=ARGS" element.
    head, *args = line[2:].split(" --args ")
    return [*shlex.split(head), *[a for pair in args for a in ("--args", pair)]]


@pytest.fixture(autouse=True)
def cuda_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parsers refuse ``--device cuda`` without CUDA; here only the options are checked."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_dry_run_runs_every_benchmark_on_cuda_into_results_cuda_within_8_minutes() -> None:
    options = run_all.parse_args(dry_run_command()[3:])
    assert options.device == "cuda"
    assert set(options.only) == set(run_all.BENCHMARKS)
    assert options.out == Path("benchmarks/RESULTS-cuda.md")
    assert options.timeout * len(options.only) <= 8 * 60


def test_every_benchmarks_extra_arguments_parse_with_that_scripts_own_parser() -> None:
    options = run_all.parse_args(dry_run_command()[3:])
    named = {name for name, _ in options.extra}
    assert named == set(run_all.BENCHMARKS)  # every benchmark is sized for the budget
    for name, extra in options.extra:
        module = importlib.import_module(f"benchmarks.{name}")
        module.parse_args([*extra, "--device", "cuda"])  # argparse exits on an unknown option


def test_unknown_option_is_refused_with_usage() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: bash benchmarks/device.sh" in result.stderr
