"""The two worked PairObjective examples in docs/plugins.md run, pass the contract kit, and equal the built-ins."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
import torch

from contrastkit.interfaces import PairLogits
from contrastkit.objectives.align_uniform import AlignUniform
from contrastkit.objectives.supcon import SupCon
from contrastkit.registry import Registry
from contrastkit.testing import check_objective

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def example(number: int) -> types.ModuleType:
    text = DOC.read_text()
    start = text.index(f"**Worked example {number},")
    code = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert code, f"no code block after worked example {number}"
    module = types.ModuleType(f"ck_docs_example_{number}")
    exec(compile(code.group(1), f"docs/plugins.md example {number}", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize(("number", "name", "cls", "builtin"),
                         [(1, "my-align-uniform", "AlignUniformity", AlignUniform()),
                          (2, "my-supcon", "SupervisedContrastive", SupCon(label="digit"))])
def test_the_worked_example_registers_passes_the_kit_and_equals_the_builtin(
    number: int, name: str, cls: str, builtin: torch.nn.Module
) -> None:
    module = example(number)
    registry = Registry(entry_points=False, builtins=False)
    registry.add_plugin(module, name=f"docs-example-{number}")
    factory = registry.get("objectives", name).factory
    objective = factory(label="digit") if number == 2 else factory()
    check_objective(objective)
    torch.manual_seed(number)
    mask = torch.rand(6, 11) < 0.3
    mask[torch.arange(6), torch.arange(6)] = True
    pair = PairLogits(logits=torch.randn(6, 11), target=torch.arange(6), anchor_view=0, target_view=1,
                      anchors=torch.randn(6, 5), positives=torch.randn(6, 5), labels=torch.zeros(6),
                      positive_mask=mask)
    assert torch.allclose(objective.pair_loss(pair), builtin.pair_loss(pair), atol=1e-6)
