"""Tiny synthetic data, made fresh for each test session, so the tests run anywhere."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def smooth_photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Photo-like: smooth colour gradients plus noise (BGR uint8)."""
    small = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    image = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-12, 13, image.shape).astype(np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def flat_cartoon(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cartoon-like: flat colour shapes with black outlines (BGR uint8)."""
    image = np.full((h, w, 3), rng.integers(100, 256, 3), np.uint8)
    for _ in range(3):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = int(rng.integers(4, max(5, min(h, w) // 3)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(image, center, radius, color, -1)
        cv2.circle(image, center, radius, (0, 0, 0), 2)
    return image


def make_dataset(root: Path, photos: int = 8, cartoons: int = 6, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    photo_dir, cartoon_dir = root / "photos", root / "cartoons"
    (photo_dir / "nested").mkdir(parents=True)
    cartoon_dir.mkdir(parents=True)
    for i in range(photos):
        h, w = (24, 30) if i == 0 else (40 + 2 * i, 48)  # the first is smaller than the crop
        folder = photo_dir / "nested" if i % 2 else photo_dir
        cv2.imwrite(str(folder / f"p{i}.jpg"), smooth_photo(rng, h, w))
    for i in range(cartoons):
        cv2.imwrite(str(cartoon_dir / f"c{i}.png"), flat_cartoon(rng, 44, 52))
    return photo_dir, cartoon_dir


@pytest.fixture
def tiny_data(tmp_path: Path) -> tuple[Path, Path]:
    return make_dataset(tmp_path / "data")


@pytest.fixture
def tiny_config(tiny_data):
    from cartoongan.training.config import TrainConfig

    photos, cartoons = tiny_data
    return TrainConfig(
        photos=str(photos),
        cartoons=str(cartoons),
        arch="cartoongan-lite",
        vgg_weights="random",
        crop_size=32,
        batch_size=2,
        num_workers=0,
        init_epochs=1,
        adv_epochs=2,
        log_every=1,
        sample_every=1000,
        checkpoint_every=1000,
        sample_count=2,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A cartoongan-lite checkpoint with random weights and non-trivial BatchNorm statistics."""
    import torch

    from cartoongan.training import checkpoint
    from cartoongan.training.networks import build_generator

    torch.manual_seed(0)
    generator = build_generator("cartoongan-lite")
    for module in generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # so that folding has something to fold
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    tensors = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    meta = {"arch": "cartoongan-lite", "config": {"crop_size": 32}, "config_hash": "test", "step": 0}
    checkpoint.save(path, tensors, meta)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint) -> Path:
    from cartoongan.export.onnx import export_onnx

    return export_onnx(tiny_checkpoint, tiny_checkpoint.with_name("tiny.onnx"))
