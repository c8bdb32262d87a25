"""`cartoongan evaluate`: how cartoon-like and how faithful a model's output is, next to references.

Rows: the input photos themselves (no stylization), the OpenCV baseline, and
the model. Columns: FID and KID to the cartoon set (lower = more cartoon-like),
FID to the input photos, content distance (mean L1 between VGG19 conv4_4
features of input and output; lower = more faithful), edge density, share
of flat pixels, and contour ink (how much more the output darkens the photo's
contours against their surroundings than the photo does: drawn outlines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from cartoongan._io import atomic_write_bytes, write_image
from cartoongan.errors import InvalidInput
from cartoongan.evaluation.baseline import opencv_cartoon
from cartoongan.evaluation.metrics import (
    contour_ink,
    edge_density,
    flat_share,
    frechet_distance,
    kernel_inception_distance,
)

FeatureFn = Callable[[list[np.ndarray]], np.ndarray]  # RGB uint8 images -> N x D


def load_images(folder: str | Path, max_images: int, max_side: int) -> list[np.ndarray]:
    """Readable RGB images of `folder` (recursive), shrunk so the long side is at most `max_side`."""
    from cartoongan.training.data import list_images, read_rgb

    images = []
    for path in list_images(folder):
        rgb = read_rgb(path)
        if rgb is None:
            continue
        scale = max_side / max(rgb.shape[:2])
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(rgb)
        if len(images) == max_images:
            break
    if len(images) < 2:
        raise InvalidInput(f"{folder}: need at least 2 readable images to compare distributions, found {len(images)}")
    return images


def vgg_features(vgg, images: list[np.ndarray]) -> list:
    """VGG features of each RGB uint8 image (one at a time: the images differ in size)."""
    import torch

    with torch.no_grad():
        return [vgg(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1) for rgb in images]


def content_distance(vgg, input_features: list, outputs: list[np.ndarray]) -> float:
    """Mean L1 between the VGG features of each input (computed once) and of its output."""
    return float(np.mean([float((a - b).abs().mean()) for a, b in zip(input_features, vgg_features(vgg, outputs))]))


def contact_sheet(columns: dict[str, list[np.ndarray]], rows: int = 8, height: int = 192) -> np.ndarray:
    """One row per photo, one column per method, under a header naming the columns (RGB)."""
    count = min(rows, min(len(images) for images in columns.values()))
    # every column is as wide as its widest resized image, so the cells line up
    resized = {
        name: [cv2.resize(img, (max(1, round(img.shape[1] * height / img.shape[0])), height)) for img in images[:count]]
        for name, images in columns.items()
    }
    widths = [max(img.shape[1] for img in images) for images in resized.values()]
    header = np.full((28, sum(widths), 3), 255, np.uint8)
    x = 0
    for name, width in zip(resized, widths):
        cv2.putText(header, name, (x + 4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        x += width
    lines = []
    for i in range(count):
        cells = [np.pad(imgs[i], ((0, 0), (0, w - imgs[i].shape[1]), (0, 0)), constant_values=255)
                 for imgs, w in zip(resized.values(), widths)]  # fmt: skip
        lines.append(np.concatenate(cells, axis=1))
    return np.concatenate([header, *lines], axis=0)


def evaluate(
    photos: str | Path,
    cartoons: str | Path,
    stylize: Callable[[np.ndarray], np.ndarray] | None,
    features: FeatureFn,
    vgg=None,
    baseline: bool = True,
    max_images: int = 200,
    max_side: int = 512,
) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """(table, outputs): metrics per method, and each method's RGB outputs (for a contact sheet).

    `stylize` maps an RGB uint8 photo to its RGB uint8 cartoon (None: no model row).
    """
    inputs = load_images(photos, max_images, max_side)
    references = load_images(cartoons, max_images * 4, max_side)
    outputs: dict[str, list[np.ndarray]] = {"input": inputs}
    if baseline:
        outputs["opencv baseline"] = [opencv_cartoon(img[:, :, ::-1].copy())[:, :, ::-1].copy() for img in inputs]
    if stylize is not None:
        outputs["model"] = [stylize(img) for img in inputs]

    cartoon_features, photo_features = features(references), features(inputs)
    input_vgg = vgg_features(vgg, inputs) if vgg is not None else None
    table = {}
    for name, images in outputs.items():
        feats = photo_features if name == "input" else features(images)
        kid, kid_std = kernel_inception_distance(feats, cartoon_features, subset_size=min(100, len(feats)))
        row = {
            "fid_to_cartoons": frechet_distance(feats, cartoon_features),
            "kid_to_cartoons": kid,
            "kid_to_cartoons_std": kid_std,
            "fid_to_photos": frechet_distance(feats, photo_features),
            "edge_density": float(np.mean([edge_density(img[:, :, ::-1]) for img in images])),
            "flat_share": float(np.mean([flat_share(img[:, :, ::-1]) for img in images])),
            "contour_ink": _mean_contour_ink(inputs, images),
        }
        if vgg is not None:  # the input row is 0 by definition
            row["content_distance"] = 0.0 if name == "input" else content_distance(vgg, input_vgg, images)
        table[name] = row
    table["_counts"] = {"photos": len(inputs), "cartoons": len(references)}
    return table, outputs


def _mean_contour_ink(photos: list[np.ndarray], images: list[np.ndarray]) -> float:
    values = [contour_ink(p[:, :, ::-1], i[:, :, ::-1]) for p, i in zip(photos, images)]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else 0.0  # no photo with contours: nothing to ink


def format_table(table: dict) -> str:
    columns = [
        "fid_to_cartoons", "kid_to_cartoons", "fid_to_photos", "content_distance", "edge_density", "flat_share",
        "contour_ink",
    ]  # fmt: skip
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in table.items():
        if name.startswith("_"):
            continue
        cells = [f"{row[c]:.4g}" if c in row else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    counts = table.get("_counts", {})
    lines.append(f"\n{counts.get('photos')} photos, {counts.get('cartoons')} cartoons")
    return "\n".join(lines)


def save(table: dict, outputs: dict[str, list[np.ndarray]], json_path: str | Path | None, sheet: str | Path | None):
    if json_path:
        atomic_write_bytes(json_path, json.dumps(table, indent=2).encode())
    if sheet:
        write_image(sheet, contact_sheet(outputs)[:, :, ::-1])
