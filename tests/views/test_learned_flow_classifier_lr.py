"""``learned-flow``'s ``classifier_lr``: the classifiers get their own learning rate in the view optimizer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from contrastkit.config import config_from_dict
from contrastkit.errors import ConfigError, InvalidParameter
from contrastkit.training import Trainer
from contrastkit.views.learned_flow import LearnedFlowViews

FLOW_LR, CLASSIFIER_LR = 5e-4, 3e-3


def supervised(**params: Any) -> LearnedFlowViews:
    return LearnedFlowViews(num_layers=2, hidden=4, supervised_label="digit", num_classes=10, classifier_width=4,
                            **params)


def ids(params: Any) -> list[int]:
    return sorted(id(p) for p in params)


def test_parameter_groups_put_the_flow_at_lr_and_the_classifiers_at_classifier_lr() -> None:
    maker = supervised(classifier_lr=CLASSIFIER_LR)
    flow_group, classifier_group = maker.parameter_groups(FLOW_LR)
    assert flow_group["lr"] == FLOW_LR and classifier_group["lr"] == CLASSIFIER_LR
    assert ids(flow_group["params"]) == ids(maker.flow.parameters())
    assert ids(classifier_group["params"]) == ids(maker.classifiers.parameters())
    assert ids(flow_group["params"] + classifier_group["params"]) == ids(maker.parameters())  # all, once each


def test_without_classifier_lr_the_classifiers_follow_lr_in_one_group() -> None:
    # One group, as before classifier_lr existed: older stage-1 checkpoints' optimizer state still loads.
    maker = supervised()
    [group] = maker.parameter_groups(FLOW_LR)
    assert group["lr"] == FLOW_LR and ids(group["params"]) == ids(maker.parameters())


def test_unsupervised_and_frozen_makers_have_one_group_and_none() -> None:
    unsupervised = LearnedFlowViews(num_layers=2, hidden=4)
    [group] = unsupervised.parameter_groups(FLOW_LR)
    assert group["lr"] == FLOW_LR and ids(group["params"]) == ids(unsupervised.parameters())
    assert supervised(classifier_lr=CLASSIFIER_LR, mode="frozen").parameter_groups(FLOW_LR) == []


@pytest.mark.parametrize("bad", [0, 0.0, -1, -1e-3, True, math.nan])
def test_invalid_classifier_lr_is_named(bad: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        supervised(classifier_lr=bad)
    assert info.value.parameter == "classifier_lr"


# -- the Trainer's view optimizer --------------------------------------------------------------


def recipe(tmp_path: Path, views: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {"name": "colorful-moving-digits", "size": 64, "image_size": 16, "digit_size": 8},
        "views": {"name": "learned-flow", "num_layers": 2, "hidden": 4, **views},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"batch_size": 16, "lr": 0.01, "view_maker_lr": FLOW_LR, "device": "cpu",
                  "out_dir": str(tmp_path / "run")},
        "log": {"progress": False},
    }


SEMI_SUPERVISED = {"supervised_label": "background", "num_classes": 10, "classifier_width": 4,
                   "labelled_fraction": 0.5, "classifier_lr": CLASSIFIER_LR}


def build(raw: dict[str, Any]) -> Trainer:
    return Trainer.from_config(config_from_dict(raw, path="recipe.toml"), path="recipe.toml", print_fn=lambda m: None)


def test_trainer_gives_the_classifiers_their_own_learning_rate(tmp_path: Path) -> None:
    trainer = build(recipe(tmp_path, SEMI_SUPERVISED))
    maker = trainer.pipeline.view_maker
    optimizer, view_optimizer = trainer.make_optimizers()
    assert isinstance(view_optimizer, torch.optim.Adam)
    groups = view_optimizer.param_groups
    assert [g["lr"] for g in groups] == [FLOW_LR, CLASSIFIER_LR]
    assert ids(groups[0]["params"]) == ids(maker.flow.parameters())
    assert ids(groups[1]["params"]) == ids(maker.classifiers.parameters())
    in_view_optimizer = [id(p) for g in groups for p in g["params"]]
    assert sorted(in_view_optimizer) == ids(p for p in maker.parameters() if p.requires_grad)  # each exactly once
    in_model_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not in_model_optimizer & set(in_view_optimizer)

    # One Adam step moves each parameter by its group's learning rate (first step: lr * g / |g|).
    before = {id(p): p.detach().clone() for p in maker.parameters()}
    for p in maker.parameters():
        p.grad = torch.ones_like(p)
    view_optimizer.step()
    moved = {id(p): (before[id(p)] - p.detach()).abs().max().item() for p in maker.parameters()}
    for group, lr in zip(groups, (FLOW_LR, CLASSIFIER_LR)):
        for p in group["params"]:
            assert moved[id(p)] == pytest.approx(lr, rel=1e-3)  # float32 parameters


def test_trainer_without_supervision_has_one_view_group(tmp_path: Path) -> None:
    trainer = build(recipe(tmp_path, {}))
    _, view_optimizer = trainer.make_optimizers()
    [group] = view_optimizer.param_groups
    assert group["lr"] == FLOW_LR and ids(group["params"]) == ids(trainer.pipeline.view_maker.parameters())


def test_without_view_maker_lr_both_groups_fall_back_to_train_lr_but_classifier_lr_stays(tmp_path: Path) -> None:
    raw = recipe(tmp_path, SEMI_SUPERVISED)
    del raw["train"]["view_maker_lr"]
    _, view_optimizer = build(raw).make_optimizers()
    assert [g["lr"] for g in view_optimizer.param_groups] == [0.01, CLASSIFIER_LR]


@pytest.mark.parametrize(
    "regroup",
    [
        lambda maker, lr: [{"params": list(maker.flow.parameters()), "lr": lr}],  # classifiers left out
        lambda maker, lr: [{"params": list(maker.parameters()), "lr": lr},  # classifiers twice
                           {"params": list(maker.classifiers.parameters()), "lr": lr}],
    ],
)
def test_trainer_refuses_groups_that_miss_or_repeat_a_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, regroup: Any
) -> None:
    trainer = build(recipe(tmp_path, SEMI_SUPERVISED))
    monkeypatch.setattr(LearnedFlowViews, "parameter_groups", regroup)
    with pytest.raises(ConfigError, match=r"LearnedFlowViews.parameter_groups\(\) must list each trainable parameter"):
        trainer.make_optimizers()


@pytest.mark.parametrize(("value", "message"), [(0, "must be > 0"), ("fast", "expected a number")])
def test_a_bad_classifier_lr_in_a_recipe_names_views_classifier_lr(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"views\.classifier_lr: {message}"):
        build(recipe(tmp_path, {**SEMI_SUPERVISED, "classifier_lr": value}))


def test_classifier_lr_without_supervision_is_refused() -> None:
    from contrastkit.views.learned_flow import LearnedFlowViews

    with pytest.raises(InvalidParameter, match="^classifier_lr: only applies with supervised_label"):
        LearnedFlowViews(classifier_lr=1e-3)
