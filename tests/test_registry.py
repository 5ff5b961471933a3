"""The plugin registry: contract tests over every registered name, isolation, duplicates, unknown names."""

from __future__ import annotations

import importlib
import inspect
import warnings

import attrs
import pytest
import torch

import contrastkit
from contrastkit import hookspecs, interfaces, plugin_loading
from contrastkit.builtin_plugins import BUILTIN_PLUGINS
from contrastkit.config import Config
from contrastkit.errors import ConfigError, DuplicateNameError, PluginLoadError, PluginLoadWarning, UnknownNameError
from contrastkit.factories import build_component
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.registry import KINDS, Registry, get_registry
from contrastkit.slots import SLOT_TABLE, Slot
from contrastkit.testing import CONTEXT, CONTRACTS, check_registered

REGISTERED = [(reg.kind, reg.name) for reg in get_registry().registrations()]


@pytest.mark.parametrize(("kind", "name"), REGISTERED, ids=[f"{k}:{n}" for k, n in REGISTERED])
def test_contract(kind: str, name: str) -> None:
    """Every registered component — built-in or installed plugin — passes its kind's contract."""
    torch.manual_seed(0)
    check_registered(kind, name)


def test_builtins_cover_every_kind() -> None:
    info = get_registry().plugins["contrastkit"]
    assert info.distribution == "contrastkit" and info.version == contrastkit.__version__
    for kind in KINDS:
        assert info.registered[kind], f"no built-in {kind}"


@pytest.mark.parametrize("slot", SLOT_TABLE, ids=[slot.kind for slot in SLOT_TABLE])
def test_every_kind_has_a_hook_a_recipe_table_and_a_protocol(slot: Slot) -> None:
    """Each slot of the table is wired up: its hookspec, its recipe table, its Protocol, its contract."""
    caller = getattr(Registry(builtins=False, entry_points=False).plugin_manager.hook, slot.hook)
    assert caller.has_spec(), f"no hookspec {slot.hook}"
    doc = inspect.getdoc(getattr(hookspecs, slot.hook))
    for word in (f"[{slot.table}]", slot.protocol.__name__, *slot.injected_names):
        assert word in doc, f"the docstring of {slot.hook} does not mention {word!r}"
    assert slot.hook in plugin_loading.HOOKS
    assert slot.table in attrs.fields_dict(Config), f"a recipe has no [{slot.table}] table"
    assert getattr(interfaces, slot.protocol.__name__) is slot.protocol
    assert set(CONTEXT[slot.kind]) == set(slot.injected_names) and slot.kind in CONTRACTS
    # The built-in of the slot's default plugin (or its first built-in) satisfies the slot's Protocol.
    name = slot.default or get_registry().plugins["contrastkit"].registered[slot.kind][0]
    factory = get_registry().get(slot.kind, name).factory
    params = dict(getattr(factory, "contract_params", {}))
    component = build_component(get_registry(), slot.kind, {"name": name, **params}, table=slot.table,
                                injected=CONTEXT[slot.kind])
    assert isinstance(component, slot.protocol), f"{slot.kind} {name!r} is no {slot.protocol.__name__}"


def test_each_builtin_family_is_a_plugin_module_registering_its_kind() -> None:
    """The built-ins load like third-party plugins: one module per family, in slot order, with its one hook."""
    registry = Registry(entry_points=False)
    assert len(BUILTIN_PLUGINS) == len(SLOT_TABLE)
    for module_name, slot in zip(BUILTIN_PLUGINS, SLOT_TABLE):
        module = importlib.import_module(module_name)
        assert registry.plugin_manager.get_plugin(module_name) is module
        assert [name for name in vars(module) if name.startswith("register_")] == [slot.hook]
    assert registry.plugins["contrastkit"].registered["encoders"] == ["convnet", "resnet18", "resnet50", "torchvision"]


def test_an_injected_argument_is_refused_in_the_recipe() -> None:
    """The registry's INJECTED comes from the slot table, and the recipe may not set what it names."""
    for slot in SLOT_TABLE:
        for injected in slot.injected_names:
            with pytest.raises(ConfigError, match=rf"^{slot.table}\.{injected}: set by contrastkit"):
                build_component(get_registry(), slot.kind, {"name": slot.default, injected: 1}, table=slot.table,
                                injected=CONTEXT[slot.kind])


GOOD = """
import contrastkit
from contrastkit.objectives.infonce import InfoNCE

class GoodObjective(InfoNCE):
    pass

@contrastkit.hookimpl
def register_objectives(register):
    register("good-objective", GoodObjective)
"""
BROKEN_IMPORT = "raise ImportError('ck_broken needs a missing library')\n"
BROKEN_REGISTER = """
import contrastkit

@contrastkit.hookimpl
def register_encoders(register):
    register("half-registered", object)
    raise RuntimeError("boom while registering")
"""
TYPO_HOOK = """
import contrastkit

@contrastkit.hookimpl
def register_objective(register):  # misspelled: no such hook
    register("never", object)
"""
DUPLICATE = """
import contrastkit
from contrastkit.objectives.infonce import InfoNCE

@contrastkit.hookimpl
def register_objectives(register):
    register("shared-objective", InfoNCE)
"""


def _fixture_plugins(make_distribution) -> None:
    make_distribution(
        "ck-fixture",
        "0.3",
        modules={
            "ck_good": GOOD,
            "ck_broken": BROKEN_IMPORT,
            "ck_half": BROKEN_REGISTER,
            "ck_typo": TYPO_HOOK,
        },
        entry_points={"good": "ck_good", "broken": "ck_broken", "half": "ck_half", "typo": "ck_typo"},
    )


def test_broken_plugins_are_isolated(make_distribution) -> None:
    _fixture_plugins(make_distribution)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry(strict=False, disabled=())
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    failed = {info.name: info for info in registry.failures}
    assert set(failed) >= {"broken", "half", "typo"}
    # Reported with the entry point and the distribution.
    broken = next(m for m in messages if "'broken'" in m)
    assert "broken = ck_broken" in broken and "ck-fixture 0.3" in broken and "ImportError" in broken
    assert "CONTRASTKIT_DISABLE_PLUGINS=broken" in broken
    assert "register_objective" in failed["typo"].error  # check_pending names the unknown hook
    # The rest still works, and a half-registered plugin is rolled back.
    assert registry.get("objectives", "good-objective").plugin.distribution == "ck-fixture"
    assert "half-registered" not in registry.names("encoders")
    assert "infonce" in registry.names("objectives")


def test_strict_mode_makes_failures_fatal(make_distribution, monkeypatch) -> None:
    _fixture_plugins(make_distribution)
    monkeypatch.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    monkeypatch.delenv("CONTRASTKIT_DISABLE_PLUGINS", raising=False)
    with pytest.raises(PluginLoadError, match="ck_broken"):
        Registry()


def test_disable_plugins_by_name(make_distribution, monkeypatch) -> None:
    _fixture_plugins(make_distribution)
    monkeypatch.setenv("CONTRASTKIT_DISABLE_PLUGINS", "broken, half,typo")
    monkeypatch.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")  # would raise if any broken one loaded
    registry = Registry()
    assert registry.failures == []
    assert "good-objective" in registry.names("objectives")
    assert "broken" not in registry.plugins


def test_duplicate_name_names_both_plugins(make_distribution) -> None:
    # Two third-party plugins (a built-in name is refused instead: tests/test_plugin_packaging.py).
    make_distribution("ck-dup", "1.2", modules={"ck_dup": DUPLICATE, "ck_dup_too": DUPLICATE},
                      entry_points={"dup": "ck_dup", "dup-too": "ck_dup_too"})
    registry = Registry(strict=False, disabled=())
    with pytest.raises(DuplicateNameError) as info:
        registry.get("objectives", "shared-objective")
    message = str(info.value)
    assert "dup (ck-dup 1.2)" in message and "dup-too (ck-dup 1.2)" in message
    assert [str(d) for d in registry.duplicates()] == [message]
    with pytest.raises(DuplicateNameError, match="dup"):
        Registry(strict=True, disabled=())


def test_duplicate_within_directly_added_plugins() -> None:
    class A:
        @contrastkit.hookimpl
        def register_objectives(self, register):
            register("x", InfoNCE)

    class B(A):
        pass

    registry = Registry(builtins=False, entry_points=False)
    registry.add_plugin(A(), name="plugin-a")
    registry.add_plugin(B(), name="plugin-b")
    with pytest.raises(DuplicateNameError, match="plugin-a and plugin-b"):
        registry.get("objectives", "x")


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_registry().get("objectives", "infonec")
    assert "did you mean 'infonce'?" in str(info.value)
    assert "contrastkit plugins" in str(info.value)
    with pytest.raises(ConfigError, match=r"^objective\.name: unknown objectives name 'infonec'; did you mean 'infonce'\?"):
        build_component(get_registry(), "objectives", "infonec", table="objective")


def test_register_rejects_bad_arguments() -> None:
    class Bad:
        @contrastkit.hookimpl
        def register_critics(self, register):
            register("", object)

    registry = Registry(builtins=False, entry_points=False, strict=False)
    with pytest.warns(PluginLoadWarning, match="non-empty string"):
        registry.add_plugin(Bad(), name="bad")
    assert registry.names("critics") == []


def test_throwaway_plugin_used_by_pipeline() -> None:
    """A plugin registered in a fixture registry is usable by name from a Pipeline."""

    class ScaledInfoNCE(InfoNCE):
        def __init__(self, *, scale: float = 2.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, logits, target):
            return self.scale * super().forward(logits, target)

    class Plugin:
        @contrastkit.hookimpl
        def register_objectives(self, register):
            register("scaled", ScaledInfoNCE)

    registry = Registry(entry_points=False)
    registry.add_plugin(Plugin(), name="scaled-plugin")
    torch.manual_seed(0)
    batch = {"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)}
    kwargs = {"encoder": {"name": "convnet", "width": 4, "depth": 2}, "registry": registry}
    torch.manual_seed(0)
    plain = contrastkit.Pipeline(objective="infonce", **kwargs).eval()
    torch.manual_seed(0)
    scaled = contrastkit.Pipeline(objective={"name": "scaled", "scale": 3.0}, **kwargs).eval()
    assert torch.allclose(scaled(batch).loss, 3 * plain(batch).loss, atol=1e-5)
