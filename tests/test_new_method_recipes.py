"""The recipes of issue 17's methods train end to end (3 steps, probes included) and `contrastkit plugins` lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrastkit.cli import main
from contrastkit.training.checkpoint import load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RECIPES = ["supcon", "nnclr", "moco_v2", "moco_v3", "align_uniform"]


@pytest.mark.parametrize("name", RECIPES)
def test_the_recipe_trains_three_steps_and_probes(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["train", str(EXAMPLES / f"{name}.toml"), "--quiet", "--set", "train.max_steps=3",
                   "--set", "data.size=64", "--set", "train.batch_size=16", "--set", "train.device='cpu'",
                   "--set", "train.epochs=1", "--set", f"train.out_dir='{(tmp_path / 'run').as_posix()}'",
                   "--set", "eval.linear_epochs=2", "--set", "eval.knn_k=5", "--set", "log.tensorboard=false"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "trained 3 steps" in out and "kNN digit top-1" in out and "linear probe background" in out
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "final.pt")["step"] == 3


def test_plugins_lists_the_new_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    builtin = next(p for p in listing if p["name"] == "contrastkit")
    assert {"supcon", "align-uniform", "dcl", "debiased", "hard-negatives"} <= set(builtin["objectives"])
    assert "nnclr" in builtin["negative_samplers"]
