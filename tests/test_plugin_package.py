"""The example plugin package ``plugins/contrastkit-sobel``, installed for real (CI installs it).

These tests fail rather than skip when the distribution is missing: the README's test command
installs it with ``pip install -e plugins/contrastkit-sobel``, and a silently skipped plugin test
would hide a broken entry point.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contrastkit.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "contrastkit-sobel"
RECIPE = PLUGIN_DIR / "examples" / "sobel.toml"
DISTRIBUTION = "contrastkit-sobel"
INSTALL_HINT = f"install it: {sys.executable} -m pip install -e {PLUGIN_DIR}"


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"distribution {DISTRIBUTION!r} is not installed; {INSTALL_HINT}")


def _contrastkit(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONTRASTKIT_DISABLE_PLUGINS", "CONTRASTKIT_STRICT_PLUGINS")}
    return subprocess.run(
        [sys.executable, "-m", "contrastkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        timeout=timeout,
    )


def test_distribution_is_installed_with_its_entry_point() -> None:
    version = _version()
    assert version == "0.1.0"
    dist = importlib.metadata.distribution(DISTRIBUTION)
    entry_points = [ep for ep in dist.entry_points if ep.group == "contrastkit"]
    assert [(ep.name, ep.value) for ep in entry_points] == [("sobel", "ck_sobel")], entry_points


def test_plugins_json_lists_the_entry_point(tmp_path: Path) -> None:
    version = _version()
    proc = _contrastkit("plugins", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    by_name = {p["name"]: p for p in json.loads(proc.stdout)}
    assert "sobel" in by_name, f"entry point 'sobel' missing from `contrastkit plugins --json`: {sorted(by_name)}"
    sobel = by_name["sobel"]
    assert sobel["error"] is None, sobel["error"]
    assert sobel["distribution"] == DISTRIBUTION
    assert sobel["version"] == version
    assert sobel["entry_point"] == "sobel = ck_sobel"
    assert sobel["view_makers"] == ["sobel"]
    assert sobel["objectives"] == ["rince"]
    assert "warning:" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(("kind", "name"), [("view_makers", "sobel"), ("objectives", "rince")])
def test_components_resolve_through_the_registry(kind: str, name: str) -> None:
    version = _version()
    registration = get_registry().get(kind, name)
    assert registration.plugin.name == "sobel"
    assert registration.plugin.distribution == DISTRIBUTION
    assert registration.plugin.version == version
    assert registration.factory.__module__.startswith("ck_sobel.")


def test_short_training_run_from_the_plugin_recipe(tmp_path: Path) -> None:
    _version()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "contrastkit",
            "train",
            str(RECIPE),
            "--quiet",
            "--set",
            f'train.out_dir="{tmp_path.as_posix()}"',
            "--set",
            "train.max_steps=5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert (tmp_path / "checkpoints" / "final.pt").is_file(), proc.stdout
    assert "trained 5 steps" in proc.stdout
    assert "I_NCE lower bound" not in proc.stdout  # RINCE reports no mutual-information bound
