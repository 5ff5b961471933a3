"""``contrastkit.experiments.records``: the code fingerprint, and a saved record holds only for its recipe and code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrastkit.experiments.records import code_version, mark_started, saved_record, started_seconds


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
