"""Tests of ``benchmarks/peers.py``: the JPEG folder, the augmentation mapping, a tiny run's JSON, no lightly."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import attrs
import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "peers.py"
# ResNet-18 on 16-pixel files, batch 8, a handful of steps, one worker and thread: seconds per round.
TINY = ["--device", "cpu", "--settings", "32px", "--size-32", "16", "--batch-sizes-32", "8", "--images", "64",
        "--steps", "2", "--warmup-steps", "1", "--repeats", "1", "--workers", "1", "--threads", "1"]
MISSING = "peers.py: lightly is not installed; pip install -e .[bench]"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def peers() -> Iterator[ModuleType]:
    """The script loaded as a module (no lightly import at load time); restores torch's thread count."""
    threads = torch.get_num_threads()
    try:
        yield _load("ck_benchmark_peers", SCRIPT)
    finally:
        sys.modules.pop("ck_benchmark_peers", None)
        torch.set_num_threads(threads)


def test_jpeg_folder_has_class_folders_of_decodable_jpegs(peers: ModuleType, tmp_path: Path) -> None:
    root = peers.write_jpeg_folder(tmp_path / "jpegs", count=12, size=32, classes=3)
    files = sorted(root.rglob("*.jpg"))
    assert len(files) == 12 and sorted(p.name for p in root.iterdir() if p.is_dir()) == ["c00", "c01", "c02"]
    assert all(len(list((root / c).glob("*.jpg"))) == 4 for c in ("c00", "c01", "c02"))
    for path in files:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (32, 32)
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.std() > 5  # content, not a flat colour
    assert all(path.stat().st_size > 500 for path in files)  # noise and shapes: a photo-like file size
    stamp = files[0].stat().st_mtime_ns
    peers.write_jpeg_folder(tmp_path / "jpegs", count=12, size=32, classes=3)  # complete: kept, not rewritten
    assert files[0].stat().st_mtime_ns == stamp


def test_augmentation_mapping(peers: ModuleType) -> None:
    kwargs = peers.simclr_transform_kwargs({"strength": 0.5, "crop_scale": [0.2, 1.0]}, 224)
    assert kwargs == {"input_size": 224, "min_scale": 0.2, "hf_prob": 0.5, "cj_prob": 0.8, "cj_strength": 0.5,
                      "random_gray_scale": 0.2, "gaussian_blur": 0.5, "sigmas": (0.1, 2.0)}
    other = peers.simclr_transform_kwargs({"strength": 1.0, "blur_p": 0.0, "grayscale_p": 0.1, "flip_p": 0.0}, 32)
    mapped = (other["cj_strength"], other["gaussian_blur"], other["random_gray_scale"], other["hf_prob"])
    assert mapped == (1.0, 0.0, 0.1, 0.0)
    assert other["min_scale"] == 0.08  # contrastkit's default crop_scale fills the gap
    with pytest.raises(ValueError, match="crop_scale"):
        peers.simclr_transform_kwargs({"crop_scale": [0.2, 0.9]}, 32)
    lightly_transforms = pytest.importorskip("lightly.transforms")
    views = lightly_transforms.SimCLRTransform(**kwargs)(Image.new("RGB", (256, 256)))
    assert [tuple(v.shape) for v in views] == [(3, 224, 224), (3, 224, 224)]


def test_contrastkit_config_reads_the_folder(peers: ModuleType, tmp_path: Path) -> None:
    job = {"device": "cpu", "batch": 16, "steps": 3, "warmup": 1, "root": str(tmp_path), "workers": 3,
           "decode": "workers", "setting": attrs.asdict(peers.SETTINGS["224px"])}
    config = peers.contrastkit_config(job, out_dir=str(tmp_path / "out"))
    assert config.data.name == "image-folder" and config.data.params == {"root": str(tmp_path), "image_size": 256}
    assert config.augment.params["size"] == 224 and config.augment.params["strength"] == 0.5
    assert config.encoder.name == "resnet50" and config.encoder.params == {"cifar_stem": False, "shared": True}
    assert (config.train.precision, config.train.channels_last, config.train.num_workers) == ("bf16", True, 3)
    assert config.critic.params["shared_head"] is True and config.train.optimizer == "lars"
    assert config.train.batch_size == 16 and config.train.max_steps == 5 and not config.eval.knn
    device = peers.contrastkit_overrides(peers.SETTINGS["32px"], root="/d", workers=0, decode="device")[0]
    assert "decode = 'device'" in device  # only set when not the default, so older image-folders still load


def test_quick_run_json(peers: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("lightly")
    assert peers.main([*TINY, "--json", str(tmp_path / "r.json"), "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("device: cpu") and "lightly " in out[0]
    assert "cj_strength': 0.5" in out[1] and out[-1].startswith("summary 32px batch 8: lightly ")
    report = json.loads((tmp_path / "r.json").read_text())
    (row,) = report["rows"]
    assert (row["setting"], row["encoder"], row["batch"], row["crop"]) == ("32px", "resnet18", 8, 16)
    for side in ("lightly", "contrastkit"):
        figures = row[side]
        assert len(figures["runs"]) == 1 and figures["median_images_per_second"] > 0
        assert figures["median_peak_bytes"] > 2**20
        for run in figures["runs"]:
            assert run["images_per_second"] == pytest.approx(8 * 1000.0 / run["ms_per_step"])
            assert 0 < run["encoder_ms"] < run["ms_per_step"]
    ratio = row["contrastkit"]["median_images_per_second"] / row["lightly"]["median_images_per_second"]
    assert row["ratio"] == pytest.approx(ratio)
    memory = row["contrastkit"]["median_peak_bytes"] / row["lightly"]["median_peak_bytes"]
    assert row["memory_ratio"] == pytest.approx(memory)
    assert row["target"] == 1.0 and row["target_applies"]
    assert f"ratio {row['ratio']:.3f} (target >= 1: " in out[-1]


def test_rounds_alternate_and_medians(peers: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """compare() alternates the sides round by round and takes each side's medians (rounds faked)."""
    calls: list[str] = []
    figures = {"lightly": [100.0, 300.0, 200.0], "contrastkit": [90.0, 150.0, 120.0]}

    def fake_round(side: str, setting: object, batch: int, options: object, **_: object) -> dict[str, float]:
        ms = figures[side][sum(c == side for c in calls)]
        calls.append(side)
        return {"ms_per_step": ms, "encoder_ms": ms / 2, "peak_bytes": 10 * ms,
                "images_per_second": batch * 1000.0 / ms}

    monkeypatch.setattr(peers, "run_round", fake_round)
    options = peers.Options(device="cuda", settings=("32px",), batch_sizes_32=(10,), repeats=3)
    row = peers.compare(peers.SETTINGS["32px"], 10, options, root=Path("."), threads=0, echo=lambda _: None)
    assert calls == ["lightly", "contrastkit"] * 3
    assert row["lightly"]["median_ms_per_step"] == 200.0 and row["contrastkit"]["median_ms_per_step"] == 120.0
    assert row["ratio"] == pytest.approx((10_000 / 120) / (10_000 / 200))
    assert row["memory_ratio"] == pytest.approx(1200 / 2000)
    assert (row["target"], row["target_applies"]) == (1.3, True)
    calls.clear()
    on_cpu = peers.compare(peers.SETTINGS["224px"], 10, attrs.evolve(options, device="cpu", repeats=1), root=Path("."),
                           threads=0, echo=lambda _: None)
    assert (on_cpu["target"], on_cpu["target_applies"]) == (None, False)  # 224px on the CPU: n/a


def test_missing_lightly_one_line(peers: ModuleType, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightly", None)  # `import lightly` now raises ImportError
    assert peers.main(["--device", "cpu"]) == peers.SKIP_STATUS
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [MISSING]
    assert captured.out == ""


def test_run_all_reports_a_missing_peer_as_skipped(tmp_path: Path) -> None:
    """A script exiting with SKIP_STATUS is reported as skipped with its line; the exit status stays 0."""
    run_all = _load("ck_benchmarks_run_all_peers", REPO / "benchmarks" / "run_all.py")
    try:
        scripts = tmp_path / "scripts"
        scripts.mkdir()
        (scripts / "peers.py").write_text(
            f"import sys\nprint({MISSING!r}, file=sys.stderr)\nsys.exit({run_all.SKIP_STATUS})\n")
        out = tmp_path / "R.md"
        assert run_all.main(["--device", "cpu", "--only", "peers", "--out", str(out)], scripts_dir=scripts) == 0
        text = out.read_text()
        assert "| peers | skipped | - |" in text
        assert f"**skipped** ({MISSING})" in text
    finally:
        sys.modules.pop("ck_benchmarks_run_all_peers", None)
