"""Smoke tests of ``benchmarks/losses.py``: both comparisons run, agree on their values, and print the ratio lines."""

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

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "losses.py"
# Tiny sizes, one timed round, one thread (a loaded 2-core box slows multi-threaded small ops down).
TINY = ["--device", "cpu", "--sizes", "16,32", "--dim", "8", "--repeats", "1", "--warmup", "0",
        "--bank-size", "200", "--negatives", "16", "--batch", "4", "--threads", "1"]
INFONCE_LINE = re.compile(
    r"^InfoNCE N=(\d+): time ratio \(contrastkit / reference\) (\d+\.\d{3}), peak memory ratio (\d+\.\d{3}|n/a); "
)
BANK_LINE = re.compile(r"^memory-bank speedup \(CMC / contrastkit\): (\d+\.\d{2})x  \(target >= 2\)$")
SUMMARY_LINE = re.compile(
    r"^summary: InfoNCE contrastkit / reference: time (\d+\.\d{3}), peak memory (\d+\.\d{3}|n/a) "
    r"\(worst N; targets <= 1\); memory-bank step CMC / contrastkit: (\d+\.\d{2})x, "
    r"with shared_negatives (\d+\.\d{2}|n/a)x \(target >= 2\)$"
)


@pytest.fixture(scope="module")
def losses() -> Iterator[ModuleType]:
    """The script loaded as a module (in-process: no second torch import); restores torch's thread count."""
    spec = importlib.util.spec_from_file_location("ck_benchmark_losses", SCRIPT)
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


def test_report_ratio_lines_and_cross_checks(
    losses: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert losses.main([*TINY, "--json", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("device: cpu") and f"torch {torch.__version__}" in lines[0]
    report = json.loads((tmp_path / "r.json").read_text())

    # One ratio line per N, matching the JSON.
    per_n = {int(m.group(1)): m for m in map(INFONCE_LINE.match, lines) if m}
    assert sorted(per_n) == [16, 32]
    for entry in report["infonce"]:
        assert float(per_n[entry["n"]].group(2)) == pytest.approx(entry["time_ratio"], abs=1e-3)
        # Same loss and gradients on both sides; no tensor anywhere near N^2 * D floats.
        assert entry["loss_abs_diff"] < 1e-5
        assert entry["contrastkit_loss"] == pytest.approx(entry["reference_loss"], abs=1e-5)
        assert entry["grad_max_abs_diff"] < 1e-5
        for side in ("reference", "contrastkit"):
            assert len(entry[side]["ms"]) == 1 and entry[side]["median_ms"] > 0
            largest = entry[side]["largest_allocation_bytes"]
            assert largest is None or largest < entry["n"] ** 2 * 8 * 4

    # Memory bank: the same scores from the same sampled indices, the same banks after the update.
    bank = report["memory_bank"]
    assert bank["negative_scores_max_abs_diff"] < 1e-5
    assert bank["positive_scores_max_abs_diff"] < 1e-5
    assert bank["banks_after_update_max_abs_diff"] < 1e-6
    assert bank["cmc"]["median_ms"] > 0 and bank["contrastkit"]["median_ms"] > 0
    speedup = [m for m in map(BANK_LINE.match, lines) if m]
    assert len(speedup) == 1 and float(speedup[0].group(1)) == pytest.approx(bank["speedup"], abs=5e-3)

    summary = SUMMARY_LINE.match(lines[-1])
    assert summary is not None, lines[-1]
    assert float(summary.group(1)) == pytest.approx(max(e["time_ratio"] for e in report["infonce"]), abs=1e-3)
    assert float(summary.group(3)) == pytest.approx(bank["speedup"], abs=5e-3)
    assert bank["contrastkit_shared_negatives"]["median_ms"] > 0
    assert float(summary.group(4)) == pytest.approx(bank["shared_negatives_speedup"], abs=5e-3)


def test_cmc_nce_loss_runs(losses: ModuleType) -> None:
    """``--cmc-loss nce``: CMC's NCECriterion on exp(s / T) / Z; the cross-check still compares raw scores."""
    settings = losses.Settings(device="cpu", sizes=[8], dim=8, repeats=1, warmup=0, bank_size=50, negatives=8,
                               batch=4, cmc_loss="nce")
    result = losses.run_memory_bank(settings, torch.device("cpu"))
    assert result.score_diff < 1e-5 and result.bank_diff < 1e-6
    assert result.cmc.median > 0 and result.contrastkit.median > 0


def test_alias_method_draws_uniformly_in_range(losses: ModuleType) -> None:
    torch.manual_seed(0)
    drawn = losses.AliasMethod(torch.ones(10)).draw(20_000)
    counts = torch.bincount(drawn, minlength=10)
    assert counts.numel() == 10 and int(counts.min()) > 1_700 and int(counts.max()) < 2_300


def test_negatives_must_fit_the_bank(losses: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        losses.main(["--device", "cpu", "--bank-size", "100", "--negatives", "100"])
    assert exc.value.code == 2
    assert "--negatives: must be below --bank-size" in capsys.readouterr().err


def test_ntxent_matches_twice_lightlys_loss_and_reports_a_ratio(losses: ModuleType) -> None:
    pytest.importorskip("lightly")
    settings = losses.Settings(device="cpu", sizes=[32], dim=8, repeats=1, warmup=0)
    result = losses.run_ntxent(settings, 32, torch.device("cpu"))
    assert result.loss_diff < 1e-5 and result.grad_diff < 1e-6  # 2 * NTXentLoss == contrastkit's two-way sum
    assert result.reference_loss > 1.0  # about 2 log(2N - 1) at random inputs
    assert result.time_ratio == pytest.approx(result.contrastkit.median / result.reference.median)


def test_ntxent_rows_are_left_out_without_lightly(losses: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(losses, "lightly_ntxent", lambda: None)
    settings = losses.Settings(device="cpu", sizes=[16], dim=8, repeats=1, warmup=0, bank_size=200, negatives=16,
                               batch=4)
    result = losses.run_benchmark(settings)
    assert result.ntxent == [] and result.as_dict()["ntxent_lightly"] == []
    assert "NT-Xent" not in losses.format_report(result)
