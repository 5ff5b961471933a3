"""``docs/views/make_pictures.py`` draws every view maker's picture on the embedded data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "views" / "make_pictures.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_pictures", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["color-split", "factor-pair", "learned-flow", "video", "rgbd"])
def test_each_picture_is_drawn(tmp_path: Path, name: str) -> None:
    script = _script()
    assert script.main(["--out", str(tmp_path), "--samples", "2", "--only", name]) == 0
    image = Image.open(tmp_path / f"{name}.png")
    # Two rows of 32 px samples drawn at 3x, under a title strip; at least input + two views wide.
    assert image.height == script.LABEL_HEIGHT + 2 * 32 * script.SCALE
    assert image.width >= 3 * 32 * script.SCALE
    assert len(set(image.convert("L").tobytes())) > 16  # not blank


def test_the_committed_pictures_exist() -> None:
    images = SCRIPT.parent / "images"
    assert {p.name for p in images.glob("*.png")} >= {f"{n}.png" for n in _script().DRAWINGS}


def test_a_missing_checkpoint_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _script().main(["--out", str(tmp_path), "--learned-flow", str(tmp_path / "nope.pt")])
    assert exc.value.code == 2
    assert "--learned-flow: no checkpoint at" in capsys.readouterr().err
