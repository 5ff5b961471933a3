"""Plugin faults: a broken plugin is named; a plugin's runtime bug keeps its traceback under one heading line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import contrastkit.registry as registry_module
from tests.faults.conftest import RECIPE, Outcome

RUNTIME_BUG = """
import contrastkit
from contrastkit.objectives.infonce import InfoNCE

class DividingObjective(InfoNCE):
    def forward(self, *args, **kwargs):
        return 1 / 0

def exploding_critic(feature_dims: tuple = (), temperature: float = 0.1):
    raise RuntimeError("the critic's author forgot something")

@contrastkit.hookimpl
def register_objectives(register):
    register("dividing", DividingObjective)

@contrastkit.hookimpl
def register_critics(register):
    register("exploding", exploding_critic)
"""

EXITS = """
import contrastkit

@contrastkit.hookimpl
def register_encoders(register):
    raise SystemExit(3)
"""


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CONTRASTKIT_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("CONTRASTKIT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(registry_module, "_registry", None)
    yield
    for name in [n for n in sys.modules if n.startswith("ck_fault")]:
        del sys.modules[name]


def _recipe(tmp_path: Path, extra: str) -> Path:
    recipe = tmp_path / "plugin.toml"
    recipe.write_text(RECIPE.replace("{out_dir}", (tmp_path / "run").as_posix()) + extra)
    return recipe


@pytest.mark.parametrize(
    ("extra", "names"),
    [('\n[objective]\nname = "dividing"\n', ("ZeroDivisionError", "objective 'dividing'", "[objective]")),
     ('\n[critic]\nname = "exploding"\n', ("RuntimeError", "critic 'exploding'", "[critic]"))],
    ids=["objective-raises-in-forward", "critic-factory-raises"],
)
def test_a_plugin_bug_is_headed_by_the_plugin_and_its_slot(
    extra: str, names: tuple[str, ...], make_distribution: Callable[..., Path], fresh_registry: None,
    tmp_path: Path, cli: Callable[..., Outcome],
) -> None:
    make_distribution("ck-fault-bugs", "0.2", modules={"ck_fault_bugs": RUNTIME_BUG},
                      entry_points={"bugs": "ck_fault_bugs"})
    outcome = cli("train", str(_recipe(tmp_path, extra)), "--quiet")
    assert outcome.status == 1
    lines = outcome.err.splitlines()
    heading = next(line for line in lines if line.startswith("error: "))
    assert "plugin bugs (ck-fault-bugs 0.2)" in heading and all(n in heading for n in names), heading
    assert "Traceback (most recent call last)" in outcome.err, "the plugin author needs the traceback"
    assert lines.index(heading) < lines.index("Traceback (most recent call last):")
    assert "ck_fault_bugs" in outcome.err


def test_a_plugin_that_exits_does_not_silence_the_cli(
    make_distribution: Callable[..., Path], fresh_registry: None, cli: Callable[..., Outcome],
) -> None:
    make_distribution("ck-fault-exits", "0.1", modules={"ck_fault_exits": EXITS}, entry_points={"exits": "ck_fault_exits"})
    outcome = cli("plugins")
    assert outcome.status == 0
    assert "contrastkit" in outcome.out
    assert "exits" in outcome.err and "SystemExit" in outcome.err


@pytest.mark.parametrize("value", ["maybe", "2", "enable"])
def test_a_bad_environment_switch_is_one_line(value: str, fresh_registry: None, monkeypatch: pytest.MonkeyPatch,
                                              cli: Callable[..., Outcome]) -> None:
    monkeypatch.setenv("CONTRASTKIT_STRICT_PLUGINS", value)
    line = cli("plugins").error_line()
    assert "CONTRASTKIT_STRICT_PLUGINS" in line and repr(value) in line
