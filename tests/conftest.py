"""Shared fixtures: throwaway plugin distributions on sys.path, found through real entry points."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


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
