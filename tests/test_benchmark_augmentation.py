"""Smoke tests of ``benchmarks/augmentation.py``: the three sides run, augment, and the summary line matches the JSON."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "augmentation.py"
# Tiny sizes, one timed round, one worker, one thread (a loaded 2-core box slows multi-threaded small ops down).
TINY = ["--device", "cpu", "--sizes", "16,24", "--images", "32", "--batch", "16", "--workers", "1",
        "--repeats", "1", "--warmup", "1", "--threads", "1"]
ROW = re.compile(r"^\s*(\d+)px  (torchvision|albumentations|contrastkit) \((?:workers|device)\)\s+(\d+\.\d)\s")
SUMMARY_LINE = re.compile(
    r"^summary: images/s over torchvision per sample: contrastkit-device (.+); albumentations (.+)$"
)
RATIO = re.compile(r"^(\d+)px (\d+\.\d{2})x$")


@pytest.fixture(scope="module")
def augmentation() -> Iterator[ModuleType]:
    """The script loaded as a module (in-process: no second torch import); restores torch's thread count."""
    spec = importlib.util.spec_from_file_location("ck_benchmark_augmentation", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes look their module up while being built
    threads = torch.get_num_threads()
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        torch.set_num_threads(threads)


def _ratios(text: str) -> dict[int, float]:
    matches = [RATIO.match(part) for part in text.split(", ")]
    assert all(matches), text
    return {int(m.group(1)): float(m.group(2)) for m in matches if m}


def test_report_rows_summary_and_json(
    augmentation: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert augmentation.main([*TINY, "--json", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("device: cpu") and f"torch {torch.__version__}" in lines[0]
    assert any("runs on the CPU" in line for line in lines[:3])  # the header says the device path is not a GPU
    report = json.loads((tmp_path / "r.json").read_text())
    assert [entry["size"] for entry in report["sizes"]] == [16, 24]

    rows = {(int(m.group(1)), m.group(2)): float(m.group(3)) for m in map(ROW.match, lines) if m}
    assert len(rows) == 6
    summary = SUMMARY_LINE.match(lines[-1])
    assert summary is not None, lines[-1]
    contrastkit, albumentations = _ratios(summary.group(1)), _ratios(summary.group(2))
    for entry in report["sizes"]:
        size = entry["size"]
        assert entry["images"] == 32
        for side in ("torchvision", "albumentations", "contrastkit"):
            assert len(entry[f"{side}_images_per_s"]) == 1  # the warm-up round is not counted
            assert entry[f"{side}_median_images_per_s"] > 0
            assert rows[(size, side)] == pytest.approx(entry[f"{side}_median_images_per_s"], abs=0.06)
        torchvision = entry["torchvision_median_images_per_s"]
        assert contrastkit[size] == pytest.approx(entry["contrastkit_median_images_per_s"] / torchvision, abs=6e-3)
        assert albumentations[size] == pytest.approx(entry["albumentations_median_images_per_s"] / torchvision,
                                                     abs=6e-3)


def test_every_side_augments_every_image(augmentation: ModuleType) -> None:
    """Each side's step sees all the images, at the right size, and changes them (it is not an empty loop)."""
    settings = augmentation.Settings(device="cpu", images=10, batch=4, workers=0)
    data = augmentation.InMemoryImages(count=10, size=16)
    device = torch.device("cpu")
    seen: list[torch.Tensor] = []

    torch.manual_seed(0)
    tv = augmentation.TransformedImages(data, augmentation.torchvision_simclr(16))
    augmentation.time_pass(augmentation.make_loader(tv, settings, device), lambda b: seen.append(b["image"]), device)
    out = torch.cat(seen)
    assert out.shape == (10, 3, 16, 16) and out.dtype == torch.uint8
    assert not torch.equal(out, data.images)

    augment = augmentation.SimCLRAugmentation()
    seen.clear()
    augmentation.time_pass(
        augmentation.make_loader(data, settings, device),
        lambda b: seen.append(augment(augmentation.to_device_float(b["image"], device))),
        device,
    )
    out = torch.cat(seen)
    assert out.shape == (10, 3, 16, 16) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Independently: the images as floats in [0, 1], in float64; the augmentation must have moved them.
    reference = data.images.double() / 255.0
    assert (out.double() - reference).abs().max() > 0.1


def test_to_device_float_matches_float64_reference(augmentation: ModuleType) -> None:
    images = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    expected = images.to(torch.float64) / 255.0
    got = augmentation.to_device_float(images, torch.device("cpu"))
    assert got.dtype == torch.float32 and torch.allclose(got.double(), expected, atol=1e-7)


def test_default_images_shrink_with_size(augmentation: ModuleType) -> None:
    settings = augmentation.Settings(device="cpu")
    counts = [settings.images_for(size) for size in settings.sizes]
    assert settings.sizes == (32, 96, 224) and counts == sorted(counts, reverse=True)
    assert min(counts) >= settings.batch  # at least one full batch per run
    gpu = augmentation.Settings(device="cuda")
    assert all(gpu.images_for(size) > count for size, count in zip(settings.sizes, counts))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "4"], "every size must be >= 8 pixels"),
        (["--images", "0"], "--images: must be >= 1 (got 0)"),
        (["--batch", "0"], "--batch: must be >= 1 (got 0)"),
        (["--repeats", "0"], "--repeats: must be >= 1 (got 0)"),
        (["--workers", "-1"], "--workers, --warmup and --threads must be >= 0"),
    ],
)
def test_bad_arguments_exit_2(
    augmentation: ModuleType, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        augmentation.main(["--device", "cpu", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
