"""``contrastkit eval``, ``contrastkit export`` and ``train --resume``, run in-process on a 2-step tiny run."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest

from contrastkit.cli import main
from contrastkit.cli_parser import build_parser
from contrastkit.export import load_encoder

RECIPE = """\
[data]
name = "colorful-moving-digits"
size = 64

[encoder]
name = "convnet"
width = 4
depth = 2

[train]
max_steps = 2
batch_size = 16
device = "cpu"
out_dir = "{out_dir}"

[eval]
knn = false

[log]
progress = false
tensorboard = false
"""
LABELS = ["digit", "background", "position"]


def write_recipe(folder: Path, out_dir: Path) -> Path:
    recipe = folder / "tiny.toml"
    recipe.write_text(RECIPE.format(out_dir=out_dir.as_posix()))
    return recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(recipe, out_dir) of a finished 2-step training run."""
    folder = tmp_path_factory.mktemp("cli-eval")
    recipe = write_recipe(folder, folder / "run")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["train", str(recipe), "--quiet"]) == 0
    assert "trained 2 steps" in out.getvalue()
    return recipe, folder / "run"


def one_line_error(capsys: pytest.CaptureFixture[str], status: int) -> str:
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_eval_prints_a_table_for_every_label_and_probe(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, out_dir = run
    assert main(["eval", str(recipe)]) == 0  # default: the latest checkpoint of the run
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"evaluating {out_dir / 'checkpoints' / 'final.pt'} (step 2) on cpu"
    assert lines[1].split() == ["label", "probe", "metric", "value"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (label, probe, "pixel_error" if label == "position" else "top1")
        for label in LABELS
        for probe in ("linear", "knn")
    ]
    for row in rows:
        unit = "px" if row[0] == "position" else None
        value = float(row[3].rstrip("%"))
        assert (row[4] == "px") if unit else row[3].endswith("%")
        assert 0.0 <= value <= (100.0 if not unit else 64.0)


def test_eval_json_parses(run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    recipe, out_dir = run
    checkpoint = out_dir / "checkpoints" / "final.pt"
    labels = "eval.labels=['digit', 'position']"
    assert main(["eval", str(recipe), "--checkpoint", str(checkpoint), "--json", "--set", labels]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoint"] == str(checkpoint)
    assert report["step"] == 2 and report["random_init"] is False and report["device"] == "cpu"
    assert [(r["label"], r["probe"], r["metric"]) for r in report["results"]] == [
        ("digit", "linear", "top1"),
        ("digit", "knn", "top1"),
        ("position", "linear", "pixel_error"),
        ("position", "knn", "pixel_error"),
    ]
    assert all(isinstance(r["value"], float) and math.isfinite(r["value"]) for r in report["results"])


def test_random_init_needs_no_checkpoint_and_is_seeded(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = write_recipe(tmp_path, tmp_path / "never-trained")
    args = ["eval", str(fresh), "--random-init", "--json", "--set", "eval.labels=['position']"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["checkpoint"] is None and first["random_init"] is True and first["step"] is None
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["results"] == first["results"]  # train.seed fixes the weights

    recipe, _ = run
    assert main(["eval", str(recipe), "--json", "--set", "eval.labels=['position']"]) == 0
    trained = json.loads(capsys.readouterr().out)["results"]
    assert trained != first["results"]  # the checkpoint was loaded, the random init was not


def test_missing_checkpoint_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write_recipe(tmp_path, tmp_path / "never-trained")
    line = one_line_error(capsys, main(["eval", str(recipe)]))
    folder = tmp_path / "never-trained" / "checkpoints"
    assert line == f"error: {folder}: checkpoint not found; train first or pass --checkpoint"

    missing = tmp_path / "nope.pt"
    line = one_line_error(capsys, main(["eval", str(recipe), "--checkpoint", str(missing)]))
    assert line == f"error: {missing}: checkpoint not found; train first or pass --checkpoint"


def test_eval_rejects_a_recipe_that_does_not_fit_the_checkpoint(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, _ = run
    line = one_line_error(capsys, main(["eval", str(recipe), "--set", "encoder.width=8"]))
    assert "final.pt: the weights do not fit" in line and "pass the recipe it was trained with" in line

    line = one_line_error(capsys, main(["eval", str(recipe), "--set", "eval.labels=['digits']"]))
    assert line.endswith("eval.labels: the dataset has no label 'digits'; did you mean 'digit'? (got 'digits')")


def test_checkpoint_and_random_init_are_exclusive() -> None:
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()):
        build_parser().parse_args(["eval", "r.toml", "--checkpoint", "c.pt", "--random-init"])
    assert info.value.code == 2


def test_export_command_writes_a_loadable_file(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out_dir = run
    out = tmp_path / "encoder.safetensors"
    assert main(["export", str(out_dir / "checkpoints" / "final.pt"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {out}: 2 encoders for 2 views (channels (1, 2) -> features (8, 8)), step 2"
    )
    assert len(load_encoder(out)) == 2

    line = one_line_error(capsys, main(["export", str(tmp_path / "none.pt"), "--out", str(out)]))
    assert line.startswith(f"error: {tmp_path / 'none.pt'}: checkpoint not found")


def test_train_resume_passes_resume_to_fit(
    run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contrastkit.training import Trainer, TrainResult

    calls: list[dict[str, object]] = []

    def fake_fit(self: Trainer, **kwargs: object) -> TrainResult:
        calls.append(kwargs)
        return TrainResult(steps=2, seconds=1.0, images_per_second=32.0, final_metrics={"loss": 1.0},
                           checkpoint=self.out_dir / "checkpoints" / "final.pt", tensorboard_dir=None, knn=[])

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    recipe, _ = run
    assert main(["train", str(recipe), "--quiet", "--resume"]) == 0
    assert main(["train", str(recipe), "--quiet"]) == 0
    assert main(["train", str(recipe), "--quiet", "--resume", "--allow-change", "train.lr"]) == 0
    assert calls == [{"resume": True, "allow_changes": []}, {"resume": False, "allow_changes": []},
                     {"resume": True, "allow_changes": ["train.lr"]}]
    assert "trained 2 steps" in capsys.readouterr().out
