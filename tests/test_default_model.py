"""The trained default model shipped in the package: present, consistent across its files, stylizing."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from cartoongan import Cartoonizer
from cartoongan.evaluation.metrics import flat_share
from cartoongan.sdk.model import default_model_path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "photo.jpg"


@pytest.fixture(scope="module")
def example() -> np.ndarray:
    bgr = cv2.imread(str(EXAMPLE))
    assert bgr is not None, f"{EXAMPLE} is missing or unreadable"
    return cv2.resize(bgr, (384, 216), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def cartoonizer():
    with Cartoonizer(backend="onnxruntime-cpu") as c:
        yield c


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def test_default_model_is_shipped_small_and_described(cartoonizer):
    path = default_model_path()
    assert path.stat().st_size <= 20 * 2**20
    assert cartoonizer.info.path == path
    assert cartoonizer.info.arch == "cartoongan-lite" and cartoonizer.info.precision == "fp32"
    for sibling in ("default.int8.onnx", "default.safetensors", "default.json"):
        assert (path.parent / sibling).is_file(), sibling


def test_default_model_changes_the_example_photo_but_keeps_it(cartoonizer, example):
    out = cartoonizer.run(example)
    assert out.shape == example.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - example.astype(int)).mean() > 5  # not the identity
    assert psnr(out, example) > 12  # not a different picture either


def test_default_model_output_is_flatter_than_the_photo(cartoonizer, example):
    assert flat_share(cartoonizer.run(example)) > flat_share(example)


def test_shipped_int8_agrees_with_fp32(cartoonizer, example):
    with Cartoonizer(precision="int8", backend="onnxruntime-cpu") as int8:
        assert int8.info.precision == "int8"
        assert psnr(int8.run(example), cartoonizer.run(example)) >= 30


def test_shipped_onnx_matches_the_shipped_weights(cartoonizer, example):
    import torch

    from cartoongan.export.onnx import load_generator

    generator, _ = load_generator(default_model_path().with_suffix(".safetensors"))
    rgb = example[:, :, ::-1].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ((generator(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
    got = cartoonizer.run(example)[:, :, ::-1].astype(np.float64)
    assert np.abs(got - expected).max() <= 1
