"""Packaging mistakes get errors as good as recipe errors (issue 17, item 4): one line naming the
plugin and its distribution, saying what is wrong and how to fix it.

Each test installs throwaway distributions with real entry points (``make_distribution``) into a
fresh process-wide registry (``clean_env``, both in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import warnings
from typing import Any, ClassVar

import pytest
import torch

import contrastkit
import contrastkit.registry as registry_module
from contrastkit.cli import main
from contrastkit.errors import (
    ConfigError,
    ContrastkitError,
    DuplicateNameError,
    InvalidParameter,
    PluginLoadError,
    PluginLoadWarning,
    UnknownNameError,
)
from contrastkit.factories import build_component
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.registry import Registry
from contrastkit.testing import check_registered


def _load(**kwargs: object) -> tuple[Registry, list[str]]:
    """A registry loaded with every entry point, and the plugin warnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry(**kwargs)  # type: ignore[arg-type]
    return registry, [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]


def _only(messages: list[str], plugin: str) -> str:
    """The one warning naming ``plugin``; it must be a single line."""
    [message] = [m for m in messages if f"plugin {plugin!r}" in m]
    assert "\n" not in message, message
    return message


def _objective_plugin(*names: str, override: bool = False) -> str:
    calls = "\n".join(f"    register({n!r}, Mine{', override=True' if override else ''})" for n in names)
    return f"""
import contrastkit
from contrastkit.objectives.infonce import InfoNCE

class Mine(InfoNCE):
    pass

@contrastkit.hookimpl
def register_objectives(register):
{calls}
"""


# -- 1. a plugin that registers nothing -------------------------------------------------------------
UNDECORATED = """
from contrastkit.objectives.infonce import InfoNCE

def register_objectives(register):  # @contrastkit.hookimpl forgotten
    register("never", InfoNCE)
"""
HELPERS_ONLY = """
def helper():
    return 1
"""


def test_plugin_without_hookimpl_warns_with_a_hint(make_distribution, clean_env) -> None:
    make_distribution("ck-empty", "0.2", modules={"ck_empty": UNDECORATED}, entry_points={"empty": "ck_empty"})
    registry, messages = _load()
    message = _only(messages, "empty")
    assert message.startswith("plugin 'empty' (entry point 'empty = ck_empty', distribution ck-empty 0.2) "
                              "registered nothing: ")
    assert "register_objectives is not decorated" in message and "@contrastkit.hookimpl" in message
    assert [info.name for info in registry.failures] == ["empty"] and "empty" not in registry.plugins
    assert "never" not in registry.names("objectives")
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"^plugin 'empty' .*registered nothing: .*@contrastkit\.hookimpl"):
        Registry()


def test_entry_point_naming_the_wrong_module_warns_with_a_hint(make_distribution, clean_env) -> None:
    make_distribution(
        "ck-wrong",
        "1.0",
        modules={"ck_wrong": _objective_plugin("right-module"), "ck_wrong_helpers": HELPERS_ONLY},
        entry_points={"wrong": "ck_wrong_helpers"},
    )
    registry, messages = _load()
    message = _only(messages, "wrong")
    assert "distribution ck-wrong 1.0" in message and "registered nothing" in message
    assert "module ck_wrong_helpers has no register_<kind> function" in message
    assert '(wrong = "module" in [project.entry-points.contrastkit])' in message
    assert "@contrastkit.hookimpl" in message
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "yes")
    with pytest.raises(PluginLoadError, match=r"project\.entry-points\.contrastkit"):
        Registry()


def test_hooks_that_never_call_register_warn(make_distribution, clean_env) -> None:
    quiet = "import contrastkit\n\n@contrastkit.hookimpl\ndef register_critics(register):\n    pass\n"
    make_distribution("ck-quiet", "0.1", modules={"ck_quiet": quiet}, entry_points={"quiet": "ck_quiet"})
    _, messages = _load()
    assert "its hooks (register_critics) ran but never called register(name, factory)" in _only(messages, "quiet")


def test_cli_reports_a_plugin_that_registers_nothing(make_distribution, clean_env, capsys) -> None:
    make_distribution("ck-empty", "0.2", modules={"ck_empty": UNDECORATED}, entry_points={"empty": "ck_empty"})
    assert main(["plugins", "--json"]) == 0
    out, err = capsys.readouterr()
    by_name = {p["name"]: p for p in json.loads(out)}
    assert by_name["empty"]["error"].startswith("registered nothing: ")
    [line] = err.strip().splitlines()
    assert line.startswith("warning: plugin 'empty' (entry point 'empty = ck_empty', distribution ck-empty 0.2)")


# -- 2. two distributions with one entry-point name ------------------------------------------------
def _two_edges(make_distribution) -> None:
    make_distribution("ck-a", "1.0", modules={"ck_a": _objective_plugin("from-a")}, entry_points={"edges": "ck_a"})
    make_distribution("ck-b", "2.0", modules={"ck_b": _objective_plugin("from-b")}, entry_points={"edges": "ck_b"})


def test_entry_point_clash_names_both_distributions(make_distribution, clean_env) -> None:
    _two_edges(make_distribution)
    registry, messages = _load()
    message = _only(messages, "edges")
    assert "ck-a 1.0 (edges = ck_a)" in message and "ck-b 2.0 (edges = ck_b)" in message
    winner = registry.plugins["edges"].distribution
    loser = "ck-b" if winner == "ck-a" else "ck-a"
    assert f"distribution {loser} " in message  # the plugin refused is the one the line starts with
    assert f"CONTRASTKIT_DISABLE_PLUGINS={loser}:edges (keeps {winner})" in message
    assert f"={winner}:edges (keeps {loser})" in message
    assert f"from-{winner[-1]}" in registry.names("objectives")
    assert f"from-{loser[-1]}" not in registry.names("objectives")
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"declared by two distributions, ck-. .\.0 .* and ck-. .\.0"):
        Registry()


@pytest.mark.parametrize("disable", ["ck-a:edges", "CK_A:edges", " ck-a:edges , other"])
def test_disable_one_distribution_of_a_clash(make_distribution, clean_env, disable: str) -> None:
    _two_edges(make_distribution)
    clean_env.setenv("CONTRASTKIT_DISABLE_PLUGINS", disable)
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")  # any warning would raise
    registry = Registry()
    assert registry.plugins["edges"].distribution == "ck-b" and registry.failures == []
    assert "from-b" in registry.names("objectives") and "from-a" not in registry.names("objectives")
    assert registry.disabled >= {"ck-a:edges"}


def test_plain_name_still_disables_every_distribution(make_distribution, clean_env) -> None:
    _two_edges(make_distribution)
    clean_env.setenv("CONTRASTKIT_DISABLE_PLUGINS", "edges")
    registry, messages = _load()
    assert messages == [] and "edges" not in registry.plugins
    assert not {"from-a", "from-b"} & set(registry.names("objectives"))
    assert Registry(disabled=["ck-b:edges"]).plugins["edges"].distribution == "ck-a"


def test_entry_point_named_like_the_builtins(make_distribution, clean_env) -> None:
    make_distribution("ck-core", "0.1", modules={"ck_core": _objective_plugin("core-objective")},
                      entry_points={"contrastkit": "ck_core"})
    registry, messages = _load()
    message = _only(messages, "contrastkit")
    assert "distribution ck-core 0.1" in message and "contrastkit 0.1.0 (built in)" in message
    assert "reserved for the built-ins: rename the entry point" in message
    assert "CONTRASTKIT_DISABLE_PLUGINS=ck-core:contrastkit" in message
    assert registry.plugins["contrastkit"].distribution == "contrastkit"


# -- 3. built-in names ---------------------------------------------------------------------------
def test_builtin_name_is_refused_and_the_default_keeps_working(make_distribution, clean_env) -> None:
    make_distribution("ck-shadow", "0.5", modules={"ck_shadow": _objective_plugin("infonce", "shadow-own")},
                      entry_points={"shadow": "ck_shadow"})
    registry, messages = _load()
    message = _only(messages, "shadow")
    assert message.startswith("plugin 'shadow' (entry point 'shadow = ck_shadow', distribution ck-shadow 0.5) "
                              "registers objectives 'infonce', a built-in name: refused")
    assert "override=True" in message
    # The built-in stays: a recipe's default objective (infonce) still builds, unambiguously.
    assert registry.get("objectives", "infonce").plugin.name == "contrastkit"
    assert type(build_component(registry, "objectives", "infonce", table="objective")) is InfoNCE
    assert registry.duplicates() == []
    # The plugin's other names are kept.
    assert registry.get("objectives", "shadow-own").plugin.name == "shadow"
    assert registry.plugins["shadow"].registered["objectives"] == ["shadow-own"]
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"^plugin 'shadow' .*ck-shadow 0\.5\) registers objectives 'infonce'"):
        Registry()


def test_an_explicit_override_replaces_the_builtin(make_distribution, clean_env, capsys) -> None:
    make_distribution("ck-over", "0.7", modules={"ck_over": _objective_plugin("infonce", override=True)},
                      entry_points={"over": "ck_over"})
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")  # an override is not an error
    registry = Registry()
    reg = registry.get("objectives", "infonce")
    assert reg.plugin.name == "over" and reg.override and reg.factory.__module__ == "ck_over"
    assert registry.plugins["over"].overrides["objectives"] == ["infonce"]
    assert registry.duplicates() == []
    # `contrastkit plugins` shows it, in JSON and in the table.
    assert main(["plugins", "--json"]) == 0
    by_name = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert by_name["over"]["overrides"] == {"objectives": ["infonce"]}
    assert by_name["contrastkit"]["overrides"] == {}
    registry_module.reset_registry()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "infonce (overrides the built-in)" in out
    assert "override: objectives 'infonce' is over (ck-over 0.7)'s, not the built-in" in out


def test_two_third_party_plugins_stay_a_duplicate_naming_both(make_distribution, clean_env) -> None:
    make_distribution("ck-x", "1.0", modules={"ck_x": _objective_plugin("same")}, entry_points={"x": "ck_x"})
    make_distribution("ck-y", "3.1", modules={"ck_y": _objective_plugin("same")}, entry_points={"y": "ck_y"})
    registry, messages = _load()
    assert messages == []
    with pytest.raises(DuplicateNameError) as info:
        registry.get("objectives", "same")
    message = str(info.value)
    assert "x (ck-x 1.0)" in message and "y (ck-y 3.1)" in message
    assert "CONTRASTKIT_DISABLE_PLUGINS=ck-" in message and "ck-x:x" in message and "ck-y:y" in message
    assert [str(d) for d in registry.duplicates()] == [message]


# -- 4. misspelt hooks -------------------------------------------------------------------------------
@pytest.mark.parametrize(("typo", "hook"), [("register_objective", "register_objectives"),
                                            ("register_critic", "register_critics"),
                                            ("registr_encoders", "register_encoders")])
def test_misspelt_hook_suggests_the_hook(make_distribution, clean_env, typo: str, hook: str) -> None:
    source = f"import contrastkit\n\n@contrastkit.hookimpl\ndef {typo}(register):\n    register('x', object)\n"
    make_distribution("ck-typo", "0.9", modules={"ck_typo": source}, entry_points={"typo": "ck_typo"})
    registry, messages = _load()
    message = _only(messages, "typo")
    assert message.startswith("plugin 'typo' (entry point 'typo = ck_typo', distribution ck-typo 0.9) failed to load")
    assert f"unknown hook {typo!r}" in message and f"did you mean {hook!r}?" in message
    assert "ck_typo.py:3)" in message  # where the misspelt function is defined (its decorator)
    assert [info.name for info in registry.failures] == ["typo"]
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=f"did you mean {hook!r}"):
        Registry()


# -- 5. a hook that raises: file and line --------------------------------------------------------------
RAISES_IN_HELPER = """
import contrastkit


def _check():
    raise RuntimeError("the plugin's own check failed")


@contrastkit.hookimpl
def register_encoders(register):
    _check()
"""
RAISES_IN_LIBRARY = """
import contrastkit


@contrastkit.hookimpl
def register_critics(register):
    register("parsed", int("not a number"))
"""


def test_hook_that_raises_is_reported_with_file_and_line(make_distribution, clean_env) -> None:
    root = make_distribution(
        "ck-raise", "0.3",
        modules={"ck_helper": RAISES_IN_HELPER, "ck_library": RAISES_IN_LIBRARY, "ck_import": "\n\nx = 1 / 0\n"},
        entry_points={"helper": "ck_helper", "library": "ck_library", "import": "ck_import"},
    )
    registry, messages = _load()
    helper = _only(messages, "helper")
    assert "register_encoders raised RuntimeError: the plugin's own check failed" in helper
    assert f"(at {root / 'ck_helper.py'}:6)" in helper  # the innermost frame in the plugin: _check
    library = _only(messages, "library")
    assert "ValueError" in library and f"(at {root / 'ck_library.py'}:7)" in library  # raised inside int()
    imported = _only(messages, "import")
    assert "ZeroDivisionError" in imported and f"(at {root / 'ck_import.py'}:3)" in imported
    failed = {info.name: info.error for info in registry.failures}
    assert failed["helper"].endswith(f"(at {root / 'ck_helper.py'}:6)")
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"ck_\w+\.py:\d+\)"):
        Registry()


def test_a_syntax_error_is_reported_with_its_line(make_distribution, clean_env) -> None:
    root = make_distribution("ck-syntax", "0.1", modules={"ck_syntax": "import contrastkit\ndef broken(:\n"},
                             entry_points={"syntax": "ck_syntax"})
    _, messages = _load()
    assert f"(at {root / 'ck_syntax.py'}:2)" in _only(messages, "syntax")


# -- 6. check_registered: the CLI's lines, not a raw TypeError -----------------------------------------
class NeedsQ(InfoNCE):
    def __init__(self, *, q: float) -> None:
        super().__init__()
        self.q = q


class BadDefault(InfoNCE):
    contract_params: ClassVar[dict[str, Any]] = {"q": -1.0}

    def __init__(self, *, q: float = 0.5) -> None:
        if q <= 0:
            raise InvalidParameter("q", "must be > 0", q)
        super().__init__()


class NoInChannels:
    def __init__(self, *, width: int = 8) -> None:
        self.width = width


class KitPlugin:
    @staticmethod
    @contrastkit.hookimpl
    def register_objectives(register) -> None:
        register("needs-q", NeedsQ)
        register("bad-default", BadDefault)

    @staticmethod
    @contrastkit.hookimpl
    def register_encoders(register) -> None:
        register("no-in-channels", NoInChannels)


@pytest.fixture
def kit_registry() -> Registry:
    registry = Registry(entry_points=False, strict=True)
    registry.add_plugin(KitPlugin(), name="kit")
    return registry


@pytest.mark.parametrize(
    ("kind", "name", "error", "cli_line"),
    [
        ("objectives", "needs-q", ConfigError, "objective.q: required parameter of objectives 'needs-q' is missing"),
        ("objectives", "bad-default", ConfigError, "objective.q: must be > 0 (got -1.0)"),
        ("encoders", "no-in-channels", ConfigError, "encoder: encoders 'no-in-channels' does not accept 'in_channels'"),
        ("objectives", "infonec", ConfigError, "objective.name: unknown objectives name 'infonec'; did you mean 'infonce'?"),
        ("objective", "infonce", UnknownNameError, "unknown plugin kind name 'objective'; did you mean 'objectives'?"),
    ],
)
def test_check_registered_raises_the_cli_lines(kit_registry: Registry, kind: str, name: str, error: type,
                                               cli_line: str) -> None:
    with pytest.raises(error) as info:
        check_registered(kind, name, registry=kit_registry)
    message = str(info.value)
    assert isinstance(info.value, ContrastkitError) and not isinstance(info.value, AssertionError)
    assert message.startswith(cli_line) and "\n" not in message
    if kind in ("objectives", "encoders") and name != "infonec":
        # The same line build_component (what the CLI and Pipeline use) gives for the same table.
        table = {"objectives": "objective", "encoders": "encoder"}[kind]
        params = dict(getattr(kit_registry.get(kind, name).factory, "contract_params", {}))
        injected = {"in_channels": 3} if kind == "encoders" else {}
        with pytest.raises(ConfigError) as built:
            build_component(kit_registry, kind, {"name": name, **params}, table=table, injected=injected)
        assert message.startswith(str(built.value) + "; check_registered passes the defaults plus ")


def test_check_registered_still_checks_the_contract(kit_registry: Registry) -> None:
    check_registered("objectives", "infonce", registry=kit_registry)
    with pytest.raises(AssertionError):  # a contract failure stays an AssertionError
        check_registered("encoders", "convnet", registry=_broken_encoder_registry())


def _broken_encoder_registry() -> Registry:
    class Flat(torch.nn.Module):
        feature_dim = 4

        def __init__(self, *, in_channels: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(1, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 5)  # not feature_dim wide

    class Plugin:
        @staticmethod
        @contrastkit.hookimpl
        def register_encoders(register) -> None:
            register("convnet", Flat)

    registry = Registry(builtins=False, entry_points=False)
    registry.add_plugin(Plugin(), name="flat")
    return registry
