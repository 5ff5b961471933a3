"""``learned-flow``'s ``labelled_batches = "alternate"``: InfoMin's whole labelled batches, in turn with unlabelled ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from contrastkit.config import config_from_dict
from contrastkit.errors import ConfigError, InvalidParameter
from contrastkit.interfaces import LabelledBatchSource
from contrastkit.training import Trainer
from contrastkit.training.samplers import AlternatingBatchSampler, EpochBatchSampler
from contrastkit.views.learned_flow import LearnedFlowViews, labelled_mask

SEMI = {"supervised_label": "background", "num_classes": 10, "classifier_width": 4, "labelled_fraction": 0.25}


def recipe(tmp_path: Path, views: dict[str, Any], *, batch_size: int = 8) -> dict[str, Any]:
    return {
        "data": {"name": "colorful-moving-digits", "size": 64, "image_size": 16, "digit_size": 8},
        "views": {"name": "learned-flow", "num_layers": 2, "hidden": 4, **views},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"batch_size": batch_size, "max_steps": 4, "device": "cpu", "out_dir": str(tmp_path / "run")},
        "eval": {"knn": False},
        "log": {"progress": False, "every_n_steps": 1},
    }


def build(raw: dict[str, Any]) -> Trainer:
    return Trainer.from_config(config_from_dict(raw, path="recipe.toml"), path="recipe.toml", print_fn=lambda m: None)


def test_alternate_gives_the_labelled_indices_and_mixed_or_frozen_give_none() -> None:
    alternate = LearnedFlowViews(num_layers=1, hidden=4, labelled_batches="alternate", **SEMI)
    assert isinstance(alternate, LabelledBatchSource)
    indices = alternate.labelled_batch_indices(200)
    assert torch.equal(indices, labelled_mask(torch.arange(200), 0.25).nonzero().squeeze(1))
    assert LearnedFlowViews(num_layers=1, hidden=4, **SEMI).labelled_batch_indices(200) is None
    frozen = LearnedFlowViews(num_layers=1, hidden=4, labelled_batches="alternate", mode="frozen", **SEMI)
    assert frozen.labelled_batch_indices(200) is None  # stage 2 trains on ordinary batches


def test_the_trainer_alternates_labelled_batches_and_the_term_is_zero_on_unlabelled_ones(tmp_path: Path) -> None:
    trainer = build(recipe(tmp_path, {**SEMI, "labelled_batches": "alternate"}))
    sampler = trainer.make_sampler()
    assert isinstance(sampler, AlternatingBatchSampler)
    pipeline, maker = trainer.pipeline, trainer.pipeline.view_maker
    pipeline.train()
    loader = trainer.make_loader(sampler)
    batches = [pipeline.prepare_batch(b) for b in list(trainer.start_epoch(loader, 0))[:4]]
    terms = [float(maker.auxiliary_loss(b, pipeline.make_views(b)).detach()) for b in batches]
    assert all(t > 1.0 for t in terms[0::2])  # a whole labelled batch: ~2 log 10
    assert terms[1::2] == [0.0, 0.0]  # no label used on an unlabelled batch
    assert all(labelled_mask(b["index"], 0.25).all() for b in batches[0::2])
    result = trainer.fit()
    assert result.steps == 4


def test_mixed_batches_stay_the_default(tmp_path: Path) -> None:
    assert isinstance(build(recipe(tmp_path, SEMI)).make_sampler(), EpochBatchSampler)


def test_a_labelled_set_smaller_than_a_batch_fails_before_training(tmp_path: Path) -> None:
    raw = recipe(tmp_path, {**SEMI, "labelled_fraction": 0.05, "labelled_batches": "alternate"}, batch_size=16)
    with pytest.raises(ConfigError, match=r"recipe.toml: views.labelled_batches: \d+ labelled samples cannot fill "
                                          "one batch of 16"):
        build(raw)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("params", "message"), [
    ({**SEMI, "labelled_batches": "sometimes"}, 'must be "mixed"'),
    ({"labelled_batches": "alternate"}, "needs supervised_label"),
    ({**SEMI, "labelled_fraction": 1.0, "labelled_batches": "alternate"}, "labelled_fraction below 1"),
])
def test_bad_labelled_batches_are_named(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message) as info:
        LearnedFlowViews(num_layers=1, hidden=4, **params)
    assert info.value.parameter == "labelled_batches"
