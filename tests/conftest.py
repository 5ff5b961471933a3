"""Shared fixtures: throwaway plugin distributions on sys.path, found through real entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import contrastkit.registry as registry_module


@pytest.fixture
def make_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a fake installed distribution (``*.dist-info`` + modules) and put it on ``sys.path``.

    ``make_distribution("ck-x", "0.1", modules={"ck_x": "source"}, entry_points={"x": "ck_x"})``
    """
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(name: str, version: str, *, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{ep} = {target}" for ep, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[contrastkit]\n{lines}\n")
        return tmp_path

    return make


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No plugin switches from the caller's shell, a fresh process-wide registry (restored after), and
    no throwaway ``ck_*`` plugin module cached in ``sys.modules`` from another test (same module
    names, different source)."""
    monkeypatch.delenv("CONTRASTKIT_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("CONTRASTKIT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(registry_module, "_registry", None)
    for name in [n for n in sys.modules if n.startswith("ck_")]:
        monkeypatch.delitem(sys.modules, name)
    yield monkeypatch
    for name in [n for n in sys.modules if n.startswith("ck_")]:
        del sys.modules[name]
