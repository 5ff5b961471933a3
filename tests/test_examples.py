"""Every recipe in examples/ loads, builds its pipeline and pushes one small batch through."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastkit import Pipeline, load_config
from contrastkit.training import Trainer

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart.toml", "infomin.toml"}


# On 64 images 10% labelled is 7, too few for a whole labelled batch of 16 (a one-line ConfigError).
SMALL_EXTRA = {"infomin.toml": ["views.labelled_fraction=0.5"]}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_builds_and_runs_one_batch(path: Path) -> None:
    small = ["data.size=64", "train.batch_size=16", "train.device='cpu'"]
    small += SMALL_EXTRA.get(path.name, [])
    config = load_config(path, small)
    trainer = Trainer.from_config(config, path=str(path), print_fn=lambda _: None)
    batch = next(iter(trainer.make_loader()))
    out = trainer.pipeline(batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert isinstance(trainer.pipeline, Pipeline)
