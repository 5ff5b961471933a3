"""``factor-pair``: the contract, the dataset it asks for, and its errors."""

from __future__ import annotations

import pytest
import torch

from contrastkit.errors import ConfigError, InvalidParameter
from contrastkit.pipeline import Pipeline
from contrastkit.testing import check_registered, check_view_maker
from contrastkit.views.factor_pair import FactorPairViews

SMALL = {"name": "convnet", "width": 4, "depth": 2}
DATA = {"name": "colorful-moving-digits", "size": 16, "image_size": 16, "digit_size": 8}


def test_contract_and_registration() -> None:
    check_view_maker(FactorPairViews(share=["digit"]))
    check_registered("view_makers", "factor-pair")


@pytest.mark.parametrize("share", [["digit"], ["background"], ["position"], ["digit", "background"], []])
def test_the_pipeline_builds_the_dataset_with_pairs_sharing_share(share: list[str]) -> None:
    pipe = Pipeline(views={"name": "factor-pair", "share": share}, encoder=SMALL, data=DATA)
    dataset = pipe.build_dataset("train")
    assert dataset.pair == tuple(share)
    batch = {k: torch.stack([dataset[i][k] for i in range(4)]) for k in ("image", "image_pair", "index")}
    views = pipe.train().make_views(pipe.prepare_batch(batch))
    assert len(views) == 2 and views[0].shape == views[1].shape == (4, 3, 16, 16)
    assert not torch.equal(views[0], views[1])


def test_a_recipe_may_repeat_the_pair_but_not_contradict_it() -> None:
    same = Pipeline(views={"name": "factor-pair", "share": ["digit"]}, encoder=SMALL, data={**DATA, "pair": ["digit"]})
    assert same.build_dataset("train").pair == ("digit",)
    with pytest.raises(ConfigError, match=r"^data\.pair: views\.factor-pair needs pair = \['digit'\]"):
        Pipeline(views={"name": "factor-pair", "share": ["digit"]}, encoder=SMALL, data={**DATA, "pair": ["background"]})


def test_a_dataset_without_pairs_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.name: views\.factor-pair needs a dataset with a 'pair' parameter"):
        Pipeline(views="factor-pair", encoder=SMALL, data={"name": "image-folder", "root": str(tmp_path)})


def test_bad_parameters_name_the_key() -> None:
    with pytest.raises(InvalidParameter, match=r"share: unknown factor 'digits'.*did you mean 'digit'"):
        FactorPairViews(share=["digits"])
    with pytest.raises(InvalidParameter, match="share: lists a factor twice"):
        FactorPairViews(share=["digit", "digit"])
    with pytest.raises(InvalidParameter, match="channels: must be >= 1"):
        FactorPairViews(channels=0)


def test_eval_mode_shows_the_labelled_image_to_both_encoders() -> None:
    batch = {"image": torch.zeros(2, 3, 4, 4), "image_pair": torch.ones(2, 3, 4, 4)}
    views = FactorPairViews().eval()(batch, lambda x, view: x)
    assert all(float(v.abs().sum()) == 0 for v in views)
