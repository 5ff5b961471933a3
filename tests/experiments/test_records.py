"""``contrastkit.experiments.records``: the code fingerprint, and a saved record holds only for its recipe and code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contrastkit.experiments.records import banking_time, code_version, mark_started, saved_record, started_seconds


def test_code_version_hashes_the_package_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import contrastkit.experiments.records as records

    fake_root = tmp_path / "contrastkit"
    (fake_root / "experiments").mkdir(parents=True)
    (fake_root / "a.py").write_text("x = 1\n")
    (fake_root / "experiments" / "records.py").write_text("")
    monkeypatch.setattr(records, "__file__", str(fake_root / "experiments" / "records.py"))
    records.code_version.cache_clear()
    try:
        first = records.code_version()
        (fake_root / "a.py").write_text("x = 2\n")
        records.code_version.cache_clear()
        assert records.code_version() != first
    finally:
        records.code_version.cache_clear()


def test_a_changed_recipe_clears_the_previous_runs_outputs(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "views" / "tensorboard").mkdir(parents=True)
    (tmp_path / "arm.json").write_text(json.dumps({"code": code_version()}))
    (tmp_path / "recipe.toml").write_text("a = 1\n")
    assert saved_record(tmp_path, "a = 1\n", "arm.json", fresh=False) == {"code": code_version()}
    assert (tmp_path / "checkpoints").is_dir(), "an unchanged recipe keeps its run"
    assert saved_record(tmp_path, "a = 2\n", "arm.json", fresh=False) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]


def test_an_interrupted_run_of_the_same_recipe_and_code_keeps_its_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "recipe.toml").write_text("a = 1\n")
    mark_started(tmp_path, 7.0)
    assert saved_record(tmp_path, "a = 1\n", "arm.json", fresh=False) is None  # no record: train (resume)
    assert (tmp_path / "checkpoints").is_dir() and started_seconds(tmp_path) == 7.0


@pytest.mark.parametrize("case", ["changed recipe", "other code", "fresh"])
def test_an_interrupted_run_is_cleared_when_it_cannot_resume(tmp_path: Path, case: str) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "recipe.toml").write_text("a = 1\n")
    mark_started(tmp_path, 7.0)
    if case == "other code":
        (tmp_path / "started.json").write_text(json.dumps({"code": "other code", "seconds": 7.0}))
    text = "a = 2\n" if case == "changed recipe" else "a = 1\n"
    assert saved_record(tmp_path, text, "arm.json", fresh=case == "fresh") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"] and started_seconds(tmp_path) is None


def test_banking_time_counts_an_earlier_attempt_and_marks_at_the_end(tmp_path: Path) -> None:
    mark_started(tmp_path, 40.0)
    with pytest.raises(RuntimeError), banking_time(tmp_path, every=60.0) as trained:
        assert 40.0 <= trained() < 41.0
        time.sleep(0.2)
        raise RuntimeError("the run crashed")
    banked = started_seconds(tmp_path)
    assert banked is not None and 40.1 <= banked < 41.0


def test_a_run_killed_outright_keeps_the_time_banked_while_it_ran(tmp_path: Path) -> None:
    # SIGKILL gives the run no chance to bank at the end: only the periodic marks survive it.
    child = subprocess.Popen([sys.executable, "-c", (
        "import time, pathlib\n"
        "from contrastkit.experiments.records import banking_time\n"
        f"with banking_time(pathlib.Path({str(tmp_path)!r}), every=0.05):\n"
        "    time.sleep(60)\n")])
    try:
        deadline = time.monotonic() + 30
        while (started_seconds(tmp_path) or 0.0) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    banked = started_seconds(tmp_path)
    assert banked is not None and banked >= 0.3
