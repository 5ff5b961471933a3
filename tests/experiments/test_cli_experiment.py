"""``contrastkit experiment``: listing, argument errors (exit 2, one line), a run, and the docs page."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from contrastkit.cli import main
from contrastkit.experiments import EXPERIMENTS, factors
from contrastkit.experiments.recipes import apply_quick_settings, recipe_toml, set_key
from contrastkit.experiments.records import code_version
from contrastkit.experiments.settings import RunSettings
from contrastkit.pipeline import Pipeline


def forbid_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a pipeline would mean training: these runs must read every arm back from its seeded record."""
    def refuse(cls: type, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("cache miss: the experiment wrote another recipe.toml than the seeded one")

    monkeypatch.setattr(Pipeline, "from_config", classmethod(refuse))


def seed_quick_factors(out_dir: Path, seeds: tuple[int, ...] = (0,)) -> None:
    """The arms ``contrastkit experiment factors --quick --device cpu`` would train, with made-up probes
    (digit accuracy 50 + seed)."""
    settings = RunSettings(out_dir=out_dir, quick=True, device="cpu", seeds=seeds)
    for arm in ("share-digit", "share-background", "share-position", "random-init"):
        for seed in seeds:
            random_init = arm == "random-init"
            raw = copy.deepcopy(factors.recipe(["digit"] if random_init else [arm.removeprefix("share-")]))
            apply_quick_settings(raw)
            folder = settings.arm_dir(arm, seed)
            set_key(raw, "train.seed", seed)
            set_key(raw, "train.out_dir", folder.as_posix())
            set_key(raw, "train.device", "cpu")
            set_key(raw, "log.progress", False)
            folder.mkdir(parents=True)
            (folder / "recipe.toml").write_text(recipe_toml(raw))
            probes = {"linear/digit": 50.0 + seed, "linear/background": 40.0, "linear/position": 6.0}
            (folder / "arm.json").write_text(json.dumps({
                "name": arm, "probes": probes, "steps": 2, "seconds": 1.0, "final_metrics": {},
                "run_dir": folder.as_posix(), "seed": seed, "code": code_version()}))


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["experiment", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_names_every_experiment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["factors", "reverse-u", "learned-views", "negatives"]
    for line, module in zip(lines, EXPERIMENTS.values()):
        assert module.TITLE in line and line.endswith("(budget 30 min)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["factor"], "error: experiment: unknown experiment 'factor'; did you mean 'factors'?"),
        (["negatives", "reverse_u"], "error: experiment: unknown experiment 'reverse_u'; did you mean 'reverse-u'?"),
        (["all", "factors"], "error: experiment: 'all' runs every experiment; give it alone"),
        (["factors", "--quick", "--docs", "page.md"], "error: --docs: --quick results are smoke runs"),
        ([], "error: experiment: name an experiment (factors, reverse-u, learned-views, negatives, all) or give --docs"),
        (["factors", "--seeds", "0"], "error: --seeds: must be a whole number of seeds >= 1 (got '0'); e.g. --seeds 3"),
        (["factors", "--seeds", "-2"], "error: --seeds: must be a whole number of seeds >= 1 (got '-2')"),
        (["factors", "--seeds", "2.5"], "error: --seeds: must be a whole number of seeds >= 1 (got '2.5')"),
        (["factors", "--seeds", "three"], "error: --seeds: must be a whole number of seeds >= 1 (got 'three')"),
        (["factors", "--scale", "papr"], "error: --scale: unknown scale 'papr'; did you mean 'paper'?"),
        (["factors", "--scale", "huge"], "error: --scale: unknown scale 'huge'; (choose from cpu, paper)"),
        (["factors", "--jobs", "0"], "error: --jobs: must be a whole number of parallel runs >= 1 (got '0'); e.g. --jobs 2"),
        (["factors", "--jobs", "1.5"], "error: --jobs: must be a whole number of parallel runs >= 1 (got '1.5')"),
        (["factors", "--jobs", "two"], "error: --jobs: must be a whole number of parallel runs >= 1 (got 'two')"),
    ],
)
def test_argument_errors_exit_2_with_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    forbid_building(monkeypatch)
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "runs", "--device", "cpu")
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # every name is checked before an arm trains


def test_docs_on_an_empty_folder_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs").mkdir()
    code, _, err = run_cli(capsys, "--docs", tmp_path / "page.md", "--out", tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: --docs: no experiment results under {tmp_path / 'runs'}")
    assert not (tmp_path / "page.md").exists()


def test_a_quick_run_reports_writes_its_files_and_stays_out_of_the_docs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_building(monkeypatch)
    seed_quick_factors(tmp_path / "runs" / "factors")
    code, out, _ = run_cli(capsys, "factors", "--quick", "--out", tmp_path / "runs", "--device", "cpu")
    assert code == 0
    assert f"== experiment factors: {factors.TITLE} (1 seed(s), scale cpu)" in out
    assert "== factors: smoke run (0.1 min)." in out
    assert out.count("unchanged recipe and code: reusing") == 3  # the three trained arms (random-init quietly)
    folder = tmp_path / "runs" / "factors"
    assert f"wrote {folder / 'results.md'} and {folder / 'plot.png'}" in out
    assert json.loads((folder / "result.json").read_text())["quick"] is True

    code, _, err = run_cli(capsys, "--docs", tmp_path / "page.md", "--out", tmp_path / "runs")
    assert code == 2 and "factors under" in err and "--quick smoke runs" in err and err.count("\n") == 1
    assert not (tmp_path / "page.md").exists()


def write_full_negatives_result(runs: Path) -> Path:
    """A full-run ``negatives`` result written by hand (and a stand-in plot) under ``runs``; its folder."""
    folder = runs / "negatives"
    folder.mkdir(parents=True)
    (folder / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = {"name": "negatives", "title": "T", "paper": "P", "criterion": "C", "reproduced": False,
              "verdict": "rho = 0.10", "table": "| K |", "plot": "plot.png", "seconds": 600.0,
              "budget_seconds": 1800.0, "quick": False, "command": "contrastkit experiment negatives", "data": {}}
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def test_docs_from_full_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--docs alone regenerates the page from result.json files (here: a full-run result written by hand)."""
    folder = write_full_negatives_result(tmp_path / "runs")
    page = tmp_path / "docs" / "reproductions.md"
    code, out, _ = run_cli(capsys, "--docs", page, "--out", tmp_path / "runs")
    assert code == 0 and out == f"wrote {page}\n"
    assert "| `negatives` | T | not reproduced | 10.0 |" in page.read_text()
    assert (tmp_path / "docs" / "reproductions" / "negatives.png").read_bytes() == (folder / "plot.png").read_bytes()


def test_a_seeded_quick_run_gives_per_seed_rows_and_a_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_building(monkeypatch)
    seed_quick_factors(tmp_path / "runs" / "factors", seeds=(0, 1, 2))
    code, out, _ = run_cli(capsys, "factors", "--quick", "--seeds", "3", "--out", tmp_path / "runs", "--device", "cpu")
    assert code == 0 and "(3 seed(s), scale cpu)" in out and out.count("unchanged recipe and code: reusing") == 9
    saved = json.loads((tmp_path / "runs" / "factors" / "result.json").read_text())
    assert saved["seeds"] == [0, 1, 2] and saved["command"] == "contrastkit experiment factors --seeds 3 --quick"
    arm = saved["data"]["arms"]["share-digit"]
    assert [r["probes"]["linear/digit"] for r in arm["seeds"]] == [50.0, 51.0, 52.0]
    assert arm["summary"]["linear/digit"] == {"mean": 51.0, "sd": 1.0, "n": 3}
    # digit error 50, 49, 48 %: mean ± sd in the table, and one row per seed
    assert "| only the digit | 49.00 ± 1.00 |" in saved["table"]
    for seed, error in enumerate([50.0, 49.0, 48.0]):
        assert f"| share-digit | {seed} | {error:.2f} |" in saved["table"]


@pytest.mark.slow
def test_end_to_end_quick_factors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Really trains the three quick arms (a couple of steps each) and probes them: ~30 s on 2 CPU cores."""
    args = ("factors", "--quick", "--out", tmp_path, "--device", "cpu")
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "== factors: smoke run" in out
    folder = tmp_path / "factors"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["plot.png", "result.json", "results.md"]
    assert (folder / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((folder / "result.json").read_text())
    assert saved["quick"] is True and saved["reproduced"] is None
    arms = saved["data"]["arms"]
    assert sorted(arms) == ["random-init", "share-background", "share-digit", "share-position"]
    for name, arm in arms.items():
        [run] = arm["seeds"]
        assert run["steps"] == (0 if name == "random-init" else 2)
        assert {"linear/digit", "linear/background", "linear/position"} <= set(run["probes"])
        assert all(math.isfinite(v) for v in run["probes"].values())
        assert (folder / name / "seed=0" / "recipe.toml").is_file()

    code, out, _ = run_cli(capsys, *args)  # rerun: every arm read back, same numbers
    assert code == 0 and out.count("unchanged recipe and code: reusing") == 3
    assert json.loads((folder / "result.json").read_text())["data"] == saved["data"]


def test_jobs_run_the_seeded_arms_in_workers_and_say_so_in_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--jobs 2`` hands the runs to worker processes (here they read back the seeded records) and the result
    records the option, its command and the wall-clock."""
    seed_quick_factors(tmp_path / "runs" / "factors", seeds=(0, 1))
    code, _, err = run_cli(capsys, "factors", "--quick", "--seeds", "2", "--jobs", "2", "--out", tmp_path / "runs",
                         "--device", "cpu")
    assert code == 0, err
    saved = json.loads((tmp_path / "runs" / "factors" / "result.json").read_text())
    assert saved["command"] == "contrastkit experiment factors --seeds 2 --jobs 2 --quick"
    assert saved["jobs"] == 2 and saved["wall_seconds"] > 0
    assert [r["probes"]["linear/digit"] for r in saved["data"]["arms"]["share-digit"]["seeds"]] == [50.0, 51.0]


def test_an_out_that_is_a_file_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_building(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = run_cli(capsys, "factors", "--quick", "--out", blocker / "runs", "--device", "cpu")
    assert code == 2 and "== experiment" not in out
    assert err == f"error: {blocker / 'runs'}: sits under the file {blocker}; set --out to a folder path\n"


def test_docs_that_cannot_be_written_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_full_negatives_result(tmp_path / "runs")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "--docs", blocker / "reproductions.md", "--out", tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: --docs: cannot write {blocker / 'reproductions'} (")
    assert err.endswith("give --docs a path in a writable folder\n")
