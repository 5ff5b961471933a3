"""The declared optional hooks: each is a Protocol the framework tests with isinstance, and the contract kit checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contrastkit import optional_hooks as hooks
from contrastkit.testing import check_optional_hooks
from contrastkit.views.learned_flow import LearnedFlowViews

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_every_hook_the_architecture_page_names_is_a_protocol() -> None:
    text = ARCHITECTURE.read_text()
    section = text[text.index("## Optional hooks"):]
    section = section[: section.index("\n## ", 1)]
    named = set(re.findall(r"`optional_hooks\.(\w+)`", section))
    assert named == {n for n in hooks.__all__ if n[0].isupper()}  # every Protocol listed, and only those
    for name in named:
        assert getattr(getattr(hooks, name), "_is_runtime_protocol", False), name


@pytest.mark.parametrize(("attribute", "value", "message"), [
    ("contrast_sign", 0.5, "contrast_sign must be"),
    ("required_keys", ("image",), "required_keys"),
    ("key_momentum", 1.0, "key_momentum must be"),
    ("temperature", 0.0, "temperature must be"),
    ("runs_in_workers", "yes", "runs_in_workers must be a bool"),
    ("image_channels", (), "image_channels"),
])
def test_the_contract_kit_refuses_a_bad_hook_value(attribute: str, value: object, message: str) -> None:
    plugin = type("Throwaway", (), {attribute: value})()
    with pytest.raises(AssertionError, match=message):
        check_optional_hooks(plugin)


def test_a_worker_augmentation_without_augment_sample_breaks_the_contract() -> None:
    plugin = type("Throwaway", (), {"runs_in_workers": True})()
    with pytest.raises(AssertionError, match="needs augment_sample"):
        check_optional_hooks(plugin)


def test_declared_hooks_are_found_by_shape_not_by_name() -> None:
    maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10)
    declared = {name for name in hooks.__all__ if name[0].isupper() and isinstance(maker, getattr(hooks, name))}
    assert {"AdversarialViewMaker", "AuxiliaryLossViewMaker", "AuxiliaryLossName", "BatchKeyReader",
            "SupervisedViewMaker", "ViewParameterGroups", "DisplayableViews"} <= declared
    assert "WorkerAugmentation" not in declared
    check_optional_hooks(maker)
