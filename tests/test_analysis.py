"""``contrastkit analyze``: the I_NCE estimate of a recipe's views, its sweep table and plot, its CLI errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from contrastkit.analysis import (
    PairEstimate,
    estimate_view_information,
    in_batch_info_nce,
    parse_sweep,
)
from contrastkit.cli import main
from contrastkit.config import load_config
from contrastkit.errors import ConfigError
from contrastkit.pipeline import Pipeline

TINY = """
[data]
name = "colorful-moving-digits"
size = 64
image_size = 16
digit_size = 8
palette = "random"

[augment]
name = "none"

[views]
name = "augmented-copies"

[encoder]
name = "convnet"
width = 4
depth = 2
shared = true

[critic]
name = "cosine"
embedding_dim = 16
temperature = 0.2

[train]
batch_size = 16
device = "cpu"
seed = 0

[eval]
linear_epochs = 5
labels = ["background"]
"""

BATCH = 16


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _estimate(recipe: Path, overrides: list[str], *, steps: int = 5, lr: float = 0.01, seed: int = 0):
    config = load_config(recipe, [*overrides, f"train.seed={seed}"])
    torch.manual_seed(seed)
    pipeline = Pipeline.from_config(config)
    return estimate_view_information(
        pipeline, pipeline.dataset, pipeline.build_dataset("test"), steps=steps, batch_size=BATCH, lr=lr, seed=seed
    )


def test_in_batch_info_nce_matches_float64_reference() -> None:
    scores = torch.randn(6, 6, generator=torch.Generator().manual_seed(3)) * 3
    s = scores.double().tolist()
    n = len(s)
    rows = [-(s[i][i] - math.log(sum(math.exp(v) for v in s[i]))) for i in range(n)]
    cols = [-(s[i][i] - math.log(sum(math.exp(s[k][i]) for k in range(n)))) for i in range(n)]
    reference = (sum(rows) / n + sum(cols) / n) / 2
    assert float(in_batch_info_nce(scores)) == pytest.approx(reference, rel=1e-5)


def test_estimate_is_below_log_k_plus_1_and_carries_k(recipe: Path) -> None:
    (estimate,) = _estimate(recipe, [])
    assert estimate.pair == "v1-v2"
    assert estimate.num_negatives == BATCH - 1
    assert estimate.ceiling == pytest.approx(math.log(BATCH))
    assert estimate.i_nce <= estimate.ceiling
    assert estimate.batches == 64 // BATCH  # every full held-out batch of the 64-sample test split
    assert estimate.i_nce == pytest.approx(estimate.ceiling - estimate.loss)
    assert f"K = {BATCH - 1}" in str(estimate)


def test_saturation_is_reported_within_five_percent_of_the_ceiling() -> None:
    ceiling = math.log(64)
    near = PairEstimate(pair="v1-v2", i_nce=0.96 * ceiling, loss=0.04 * ceiling, num_negatives=63, batches=1)
    far = PairEstimate(pair="v1-v2", i_nce=0.90 * ceiling, loss=0.10 * ceiling, num_negatives=63, batches=1)
    assert near.saturated and "saturated" in str(near)
    assert not far.saturated and "saturated" not in str(far)


@pytest.mark.parametrize("seed", [0, 1])
def test_identical_views_share_more_than_views_of_unrelated_images(recipe: Path, seed: int) -> None:
    # augment none: both copies are the same image; factor-pair with share = []: a new digit, background,
    # position and colours, i.e. (nearly) independent images. Same critic, same steps, same seed.
    (same,) = _estimate(recipe, [], seed=seed)
    (unrelated,) = _estimate(recipe, ["views.name=factor-pair", "views.share=[]"], seed=seed)
    assert same.i_nce > 0.1
    assert unrelated.i_nce < 0.05
    assert same.i_nce > unrelated.i_nce + 0.1


def test_parse_sweep_keeps_list_values_whole() -> None:
    assert parse_sweep("augment.crop_scale=[0.08, 1.0],[0.6,1.0]") == (
        "augment.crop_scale", ["[0.08, 1.0]", "[0.6,1.0]"]
    )
    values = parse_sweep('views.share=["digit"],[],["digit","position"]')[1]
    assert values == ['["digit"]', "[]", '["digit","position"]']
    with pytest.raises(ConfigError, match="at least 2 values"):
        parse_sweep("train.lr=0.1,")


def test_analyze_prints_the_bound_with_k(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(recipe), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "I_NCE v1-v2 >= " in out and f"(K = {BATCH - 1}, ceiling log(K+1) = {math.log(BATCH):.3f}" in out


def test_sweep_writes_a_table_and_a_plot_with_one_row_per_value(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = ["analyze", str(recipe), "--steps", "2", "--sweep", "critic.temperature=0.1,0.2,0.5", "--out", str(out)]
    assert main(argv) == 0
    lines = (out / "sweep.md").read_text().strip().splitlines()
    assert lines[0].startswith("| critic.temperature | I_NCE v1-v2 (nats) | K | log(K+1) | background linear top-1")
    rows = lines[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| 0.1", "| 0.2", "| 0.5"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == str(BATCH - 1)
        assert float(cells[1].split()[0]) <= math.log(BATCH)
        assert 0.0 <= float(cells[4]) <= 100.0
    with Image.open(out / "sweep.png") as image:
        assert image.format == "PNG" and image.size == (720, 480)
        assert len(image.getcolors(maxcolors=1 << 16) or []) > 2  # axes, points and text were drawn
    assert "critic.temperature = 0.5: I_NCE v1-v2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sweep", "augment.strenght=0.5,1"], "--sweep: unknown recipe key 'augment.strenght'; did you mean"),
        (["--sweep", "critic.temprature=0.1,0.2"], "did you mean 'critic.temperature'"),
        (["--sweep", "critic.temperature=0.1"], "--sweep 'critic.temperature=0.1': give at least 2 values"),
        (
            ["--sweep", "critic.temperature=0.1,0.2", "--eval-label", "colour"],
            "--eval-label: the test split has no label 'colour'",
        ),
    ],
)
def test_analyze_errors_are_one_line_with_exit_status_2(
    recipe: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["analyze", str(recipe), "--steps", "1", *extra]
    if "augment.strenght" in extra[1]:
        argv += ["--set", "augment.name=simclr"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


class _ScaledCopies(torch.nn.Module):
    """A trainable view maker: view 2 is the image times a learnable scale."""

    view_channels = (3, 3)

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, batch, augment):
        image = batch["image"]
        return [augment(image, 0), augment(image * self.scale, 1)]


def test_the_view_maker_is_frozen_and_only_the_critic_trains() -> None:
    from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits

    small = {"image_size": 16, "digit_size": 8}
    maker = _ScaledCopies()
    torch.manual_seed(0)
    pipeline = Pipeline(views=maker, encoder={"name": "convnet", "width": 4, "depth": 2},
                        critic={"name": "cosine", "embedding_dim": 8})
    before = [p.detach().clone() for p in pipeline.encoders.parameters()]
    estimate_view_information(pipeline, ColorfulMovingDigits(size=32, **small),
                              ColorfulMovingDigits(split="test", size=16, **small), steps=3, batch_size=8)
    assert float(maker.scale) == 0.5 and maker.scale.grad is None
    assert any(not torch.equal(a, b) for a, b in zip(before, pipeline.encoders.parameters()))
