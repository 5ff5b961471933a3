"""Bad recipes and flags: each fails before training with one ``error:`` line naming the key, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import RECIPE, Outcome, write_recipe


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def _append(extra: str) -> Callable[[str], str]:
    return lambda text: text + "\n" + extra + "\n"


_SAME = lambda text: text  # noqa: E731

# (id, edit of the recipe, extra flags, what the line must name)
CASES: list[tuple[str, Callable[[str], str], list[str], str]] = [
    ("unknown-table", _append("[trian]\nlr = 0.1"), [], "trian"),
    ("misspelt-train-key", _replace("batch_size = 16", "batch_sise = 16"), [], "batch_sise"),
    ("lr-not-a-number", _replace("max_steps = 4", 'max_steps = 4\nlr = "fast"'), [], "train.lr"),
    ("lr-negative", _replace("max_steps = 4", "max_steps = 4\nlr = -0.1"), [], "train.lr"),
    ("min-lr-above-lr", _replace("max_steps = 4", "max_steps = 4\nlr = 0.01\nmin_lr = 0.1"), [], "train.min_lr"),
    ("seed-too-large", _replace("max_steps = 4", "max_steps = 4\nseed = 99999999999999999999"), [], "train.seed"),
    ("seed-64-bit", _replace("max_steps = 4", "max_steps = 4\nseed = 9223372036854775807"), [], "train.seed"),
    ("seed-negative", _replace("max_steps = 4", "max_steps = 4\nseed = -3"), [], "train.seed"),
    ("out-dir-empty", _replace('out_dir = "{out_dir}"', 'out_dir = ""'), [], "train.out_dir"),
    ("batch-size-one", _replace("batch_size = 16", "batch_size = 1"), [], "train.batch_size"),
    ("max-steps-zero", _replace("max_steps = 4", "max_steps = 0"), [], "train.max_steps"),
    ("epochs-zero", _replace("max_steps = 4", "epochs = 0"), [], "train.epochs"),
    ("unknown-device", _replace('device = "cpu"', 'device = "gpu"'), [], "train.device"),
    ("unknown-precision", _replace('device = "cpu"', 'device = "cpu"\nprecision = "16"'), [], "train.precision"),
    ("unknown-optimizer", _replace('device = "cpu"', 'device = "cpu"\noptimizer = "adam"'), [], "train.optimizer"),
    ("unknown-schedule", _replace('device = "cpu"', 'device = "cpu"\nschedule = "linear"'), [], "train.schedule"),
    ("keep-zero", _replace('device = "cpu"', 'device = "cpu"\nkeep_checkpoints = 0'), [], "train.keep_checkpoints"),
    ("accumulate-zero", _replace('device = "cpu"', 'device = "cpu"\naccumulate_steps = 0'), [], "train.accumulate_steps"),
    ("grad-clip-zero", _replace('device = "cpu"', 'device = "cpu"\ngrad_clip = 0'), [], "train.grad_clip"),
    ("unknown-encoder", _replace('name = "convnet"', 'name = "convnett"'), [], "convnet"),
    ("unknown-encoder-param", _replace("width = 4", "widht = 4"), [], "widht"),
    ("encoder-width-string", _replace("width = 4", 'width = "four"'), [], "width"),
    ("unknown-dataset", _replace('name = "colorful-moving-digits"', 'name = "cifar11"'), [], "cifar11"),
    ("unknown-view-maker", _append('[views]\nname = "colour-split"'), [], "colour-split"),
    ("unknown-objective", _append('[objective]\nname = "infonse"'), [], "infonse"),
    ("unknown-negatives", _append('[negatives]\nname = "memroy-bank"'), [], "memroy-bank"),
    ("critic-temperature-zero", _append('[critic]\nname = "cosine"\ntemperature = 0'), [], "temperature"),
    ("unknown-eval-label", _replace("knn = false", 'knn = false\nlabels = ["digits"]'), [], "digits"),
    ("eval-knn-k-zero", _replace("knn = false", "knn = false\nknn_k = 0"), [], "eval.knn_k"),
    ("toml-syntax", _append("[train\nlr = 1"), [], "tiny.toml"),
    ("set-unknown-key", _SAME, ["--set", "train.lrr=0.1"], "lrr"),
    ("set-bad-value", _SAME, ["--set", "train.lr=abc"], "train.lr"),
    ("set-no-equals", _SAME, ["--set", "train.lr"], "train.lr"),
    ("allow-change-without-resume", _SAME, ["--allow-change", "train.lr"], "--allow-change"),
    ("allow-change-unknown-key", _SAME, ["--resume", "--allow-change", "train.batch_size"], "train.batch_size"),
]


@pytest.mark.parametrize(("edit", "flags", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_recipe_is_one_line_before_training(
    edit: Callable[[str], str], flags: list[str], names: str, tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(edit(RECIPE).replace("{out_dir}", (tmp_path / "run").as_posix()))
    line = cli("train", str(recipe), "--quiet", *flags).error_line()
    assert names in line
    assert not (tmp_path / "run" / "checkpoints").exists(), "nothing may be trained or written"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["train", "{tmp}/missing.toml"], "missing.toml"),
        (["train", "{tmp}"], "{tmp}"),
        (["eval", "{tmp}/missing.toml"], "missing.toml"),
        (["export", "{tmp}/missing.pt", "--out", "{tmp}/e.safetensors"], "missing.pt"),
    ],
    ids=["train-missing-recipe", "train-recipe-is-a-folder", "eval-missing-recipe", "export-missing-checkpoint"],
)
def test_a_missing_or_wrong_file_is_one_line(argv: list[str], names: str, tmp_path: Path,
                                             cli: Callable[..., Outcome]) -> None:
    line = cli(*(a.replace("{tmp}", str(tmp_path)) for a in argv)).error_line()
    assert names.replace("{tmp}", str(tmp_path)) in line


@pytest.mark.parametrize(
    "argv",
    [["experiment", "reverse-u", "--seeds", "0"], ["experiment", "reverse-u", "--seeds", "two"],
     ["experiment", "reverse-u", "--scale", "huge"], ["train"]],
    ids=["seeds-zero", "seeds-not-integer", "unknown-scale", "train-without-recipe"],
)
def test_a_bad_flag_is_the_usage_and_one_error_line(argv: list[str], cli: Callable[..., Outcome]) -> None:
    outcome = cli(*argv)
    assert outcome.status == 2 and "Traceback" not in outcome.err
    errors = [line for line in outcome.err.splitlines() if "error:" in line]
    assert len(errors) == 1, outcome.err
    assert argv[-1] in errors[0] or argv[-2] in errors[0] or "CONFIG" in errors[0]


def test_the_corpus_recipe_itself_is_valid(tmp_path: Path, cli: Callable[..., Outcome]) -> None:
    # Guards every case above against failing for a reason other than its own edit.
    recipe = write_recipe(tmp_path, tmp_path / "run")
    outcome = cli("train", str(recipe), "--quiet", "--dry-run")
    assert outcome.status == 0, outcome.err
