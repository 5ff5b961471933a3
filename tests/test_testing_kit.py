"""The contract kit catches the mutations a plugin author needs caught (contrastkit.testing)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from contrastkit.interfaces import PairLogits
from contrastkit.objectives.supcon import SupCon
from contrastkit.slots import SLOT_TABLE
from contrastkit.testing import CONTEXT, CONTRACTS, check_objective, check_view_maker
from contrastkit.views.color_split import ColorSplitViews


class IgnoresAugment:
    """Splits L | ab but never calls augment."""

    view_channels = (1, 2)

    def __call__(self, batch: dict[str, Tensor], augment: object) -> list[Tensor]:
        image = batch["image"]
        return [image[:, :1], image[:, 1:]]


class DiscardsAugment(IgnoresAugment):
    """Calls augment, then throws its output away."""

    def __call__(self, batch: dict[str, Tensor], augment: object) -> list[Tensor]:
        views = super().__call__(batch, augment)
        for i, view in enumerate(views):
            augment(view, i)  # type: ignore[operator]
        return views


@pytest.mark.parametrize("maker", [IgnoresAugment(), DiscardsAugment()], ids=["never-calls", "discards-output"])
def test_a_view_maker_that_drops_augment_fails(maker: object) -> None:
    with pytest.raises(AssertionError, match="augment"):
        check_view_maker(maker)


def test_a_real_view_maker_passes() -> None:
    check_view_maker(ColorSplitViews(space="lab"))


class IgnoresExtraPositives(SupCon):
    """A SupCon whose pair_loss reads only the target column."""

    def pair_loss(self, pair: PairLogits) -> Tensor:
        return torch.nn.functional.cross_entropy(pair.logits, pair.target)


def test_a_labelled_loss_that_ignores_extra_positives_fails() -> None:
    with pytest.raises(AssertionError, match="ignores the extra positives"):
        check_objective(IgnoresExtraPositives(label="digit"))
    check_objective(SupCon(label="digit"))


def test_every_kind_has_a_contract_and_its_injected_arguments() -> None:
    """The kit covers the slot table: one contract per kind, built with the slot's injected examples."""
    assert list(CONTRACTS) == [slot.kind for slot in SLOT_TABLE]
    for slot in SLOT_TABLE:
        assert CONTEXT[slot.kind] == {arg.name: arg.example for arg in slot.injected}
