"""Plugin loading: any exception a plugin raises (``SystemExit`` included) is isolated, and boolean
environment switches accept the usual spellings and refuse the rest (issue 16, item 5)."""

from __future__ import annotations

import json
import warnings

import pytest

import contrastkit.registry as registry_module
from contrastkit.cli import main
from contrastkit.errors import ConfigError, PluginLoadError, PluginLoadWarning
from contrastkit.registry import Registry

GOOD = """
import contrastkit
from contrastkit.objectives.infonce import InfoNCE

class GoodObjective(InfoNCE):
    pass

@contrastkit.hookimpl
def register_objectives(register):
    register("good-objective", GoodObjective)
"""


# The statement each throwaway plugin runs; the tests check the plugin is reported by name.
RAISES = {
    "sys-exit": "raise SystemExit()",
    "sys-exit-0": "raise SystemExit(0)",
    "sys-exit-msg": "raise SystemExit('bye from the plugin')",
    "generator-exit": "raise GeneratorExit('closed')",
    "custom-base": "raise type('CustomBaseError', (BaseException,), {})('custom base failure')",
}


def _hook_plugin(statement: str, *, kind: str = "encoders") -> str:
    return f"""
import contrastkit

@contrastkit.hookimpl
def register_{kind}(register):
    register("half-registered", object)
    {statement}
"""


def _warnings_of(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]


def _load(**kwargs: object) -> tuple[Registry, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry(**kwargs)  # type: ignore[arg-type]
    return registry, _warnings_of(caught)


@pytest.mark.parametrize("raises", sorted(RAISES))
def test_base_exception_in_hook_is_isolated(make_distribution, clean_env, raises: str) -> None:
    make_distribution(
        "ck-exits",
        "0.4",
        modules={"ck_good": GOOD, "ck_exits": _hook_plugin(RAISES[raises])},
        entry_points={"good": "ck_good", "exits": "ck_exits"},
    )
    registry, messages = _load(strict=False)
    # Reported once, on one line, by plugin name, entry point, distribution and the hook (kind) that raised.
    [message] = [m for m in messages if "'exits'" in m]
    assert "\n" not in message
    assert "entry point 'exits = ck_exits'" in message and "ck-exits 0.4" in message
    assert "register_encoders" in message and "CONTRASTKIT_DISABLE_PLUGINS=exits" in message
    failed = {info.name: info for info in registry.failures}
    exception_name = "CustomBaseError" if raises == "custom-base" else RAISES[raises].split()[1].split("(")[0]
    assert exception_name in failed["exits"].error
    # The traceback stays available, and points into the plugin.
    assert failed["exits"].traceback and "ck_exits.py" in failed["exits"].traceback
    # Rolled back; everything else still works.
    assert "exits" not in registry.plugins
    assert "half-registered" not in registry.names("encoders")
    assert "good-objective" in registry.names("objectives") and "infonce" in registry.names("objectives")
    # Strict mode: an error that names the plugin, with the plugin's exception as its cause.
    with pytest.raises(PluginLoadError, match=r"plugin 'exits' .*register_encoders") as info:
        Registry(strict=True)
    assert isinstance(info.value.__cause__, BaseException) and type(info.value.__cause__).__name__ == exception_name
    # Ctrl-C is not a plugin failure: it still interrupts.
    make_distribution("ck-ctrl-c", "0.1", modules={"ck_ctrl_c": _hook_plugin("raise KeyboardInterrupt")},
                      entry_points={"ctrl-c": "ck_ctrl_c"})
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        Registry(strict=False)


@pytest.mark.parametrize("raises", ["generator-exit", "custom-base"])
def test_base_exception_on_import_is_isolated(make_distribution, clean_env, raises: str) -> None:
    make_distribution(
        "ck-import-exits",
        "1.0",
        modules={"ck_good": GOOD, "ck_import_exits": RAISES[raises] + "\n"},
        entry_points={"good": "ck_good", "import-exits": "ck_import_exits"},
    )
    registry, messages = _load(strict=False)
    [message] = [m for m in messages if "'import-exits'" in m]
    assert "entry point 'import-exits = ck_import_exits'" in message and "ck-import-exits 1.0" in message
    assert [info.name for info in registry.failures] == ["import-exits"]
    assert "good-objective" in registry.names("objectives")
    with pytest.raises(PluginLoadError, match="plugin 'import-exits'"):
        Registry(strict=True)


def test_several_broken_plugins_do_not_stop_the_rest(make_distribution, clean_env) -> None:
    make_distribution(
        "ck-mixed",
        "2.0",
        modules={
            "ck_good": GOOD,
            "ck_exit_on_import": "import sys\nsys.exit(0)\n",
            "ck_exit_in_hook": _hook_plugin("import sys; sys.exit()", kind="critics"),
            "ck_custom_in_hook": _hook_plugin(RAISES["custom-base"], kind="view_makers"),
        },
        entry_points={
            "exit-on-import": "ck_exit_on_import",
            "exit-in-hook": "ck_exit_in_hook",
            "custom-in-hook": "ck_custom_in_hook",
            "good": "ck_good",
        },
    )
    registry, messages = _load(strict=False)
    assert sorted(info.name for info in registry.failures) == ["custom-in-hook", "exit-in-hook", "exit-on-import"]
    assert len(messages) == 3
    assert any("'exit-in-hook'" in m and "register_critics" in m for m in messages)
    assert any("'custom-in-hook'" in m and "register_view_makers" in m for m in messages)
    assert "good" in registry.plugins and "good-objective" in registry.names("objectives")


def test_cli_plugins_lists_the_rest_when_a_hook_exits(make_distribution, clean_env, capsys) -> None:
    make_distribution(
        "ck-exits",
        "0.4",
        modules={"ck_good": GOOD, "ck_exits": _hook_plugin("raise SystemExit()")},
        entry_points={"good": "ck_good", "exits": "ck_exits"},
    )
    assert main(["plugins", "--json"]) == 0
    out, err = capsys.readouterr()
    by_name = {p["name"]: p for p in json.loads(out)}
    assert "infonce" in by_name["contrastkit"]["objectives"]
    assert by_name["good"]["objectives"] == ["good-objective"] and by_name["good"]["error"] is None
    assert "SystemExit" in by_name["exits"]["error"] and "register_encoders" in by_name["exits"]["error"]
    [line] = err.strip().splitlines()
    assert line.startswith("warning: plugin 'exits' (entry point 'exits = ck_exits', distribution ck-exits 0.4)")

    # The table form too; strict mode turns it into one error line naming the plugin, exit status 2.
    registry_module.reset_registry()
    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert "good-objective" in out and "warning: plugin 'exits'" in err
    registry_module.reset_registry()
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", "yes")
    assert main(["plugins"]) == 2
    out, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert line.startswith("error: plugin 'exits' (entry point 'exits = ck_exits'") and "SystemExit" in line


# -- boolean environment switches -------------------------------------------------------------
TRUE_SPELLINGS = ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", " yes ", "\ttrue\n"]
FALSE_SPELLINGS = ["0", "false", "FALSE", "False", "no", "NO", "off", "Off", " 0 ", "", "   "]
INVALID_SPELLINGS = ["maybe", "2", "-1", "tru", "y", "n", "enabled", "yes please", "1.0", "0x1"]


@pytest.mark.parametrize("value", TRUE_SPELLINGS + FALSE_SPELLINGS)
def test_strict_switch_spellings(make_distribution, clean_env, value: str) -> None:
    from contrastkit.env import env_flag

    expected = value in TRUE_SPELLINGS
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", value)
    assert env_flag("CONTRASTKIT_STRICT_PLUGINS", default=False) is expected
    assert Registry(builtins=False, entry_points=False).strict is expected
    make_distribution("ck-broken", "0.1", modules={"ck_broken": "raise ImportError('missing')\n"},
                      entry_points={"broken": "ck_broken"})
    if expected:
        with pytest.raises(PluginLoadError, match="plugin 'broken'"):
            Registry()
    else:
        registry, messages = _load()
        assert [info.name for info in registry.failures] == ["broken"] and len(messages) == 1


def test_env_flag_unset_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from contrastkit.env import env_flag

    monkeypatch.delenv("CONTRASTKIT_TEST_FLAG", raising=False)
    assert env_flag("CONTRASTKIT_TEST_FLAG", default=False) is False
    assert env_flag("CONTRASTKIT_TEST_FLAG", default=True) is True
    monkeypatch.setenv("CONTRASTKIT_TEST_FLAG", " ")
    assert env_flag("CONTRASTKIT_TEST_FLAG", default=True) is True
    monkeypatch.setenv("CONTRASTKIT_TEST_FLAG", "off")
    assert env_flag("CONTRASTKIT_TEST_FLAG", default=True) is False


def _assert_names_everything(message: str, value: str) -> None:
    assert "\n" not in message
    assert message.startswith("CONTRASTKIT_STRICT_PLUGINS: ")
    assert repr(value) in message
    for spelling in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        assert spelling in message


@pytest.mark.parametrize("value", INVALID_SPELLINGS)
def test_strict_switch_refuses_other_values(clean_env, capsys, value: str) -> None:
    clean_env.setenv("CONTRASTKIT_STRICT_PLUGINS", value)
    with pytest.raises(ConfigError) as info:
        Registry(builtins=False, entry_points=False)
    _assert_names_everything(str(info.value), value)
    # The CLI turns it into one error line and exit status 2, for every command.
    assert main(["plugins", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("error: ")
    _assert_names_everything(line.removeprefix("error: "), value)
