"""Image conversion, checks, padding and tiling around a model that takes Nx3xHxW in [-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from cartoongan.errors import InvalidInput

MAX_PIXELS = 400_000_000  # ~20000 x 20000; larger images are refused, smaller ones are tiled


@dataclass
class Prepared:
    """An input converted to HxWx3 uint8 RGB, with what is needed to give it back in its own form."""

    rgb: np.ndarray
    restore: Callable[[np.ndarray], Any]  # RGB uint8 result -> the caller's type and layout


def _pil_image_type():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image.Image


def prepare(image: Any, channel_order: str = "bgr") -> Prepared:
    """Accepts a numpy uint8 array (HxW, HxWx1, HxWx3, HxWx4) or a PIL.Image; see `Cartoonizer.run`."""
    pil_type = _pil_image_type()
    if pil_type is not None and isinstance(image, pil_type):
        from PIL import Image

        if image.width == 0 or image.height == 0:
            raise InvalidInput(f"expected a non-empty image, got a {image.width}x{image.height} PIL image")
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA", "PA") else None
        rgb = np.asarray(image.convert("RGB"))

        def restore_pil(out: np.ndarray):
            result = Image.fromarray(out, "RGB")
            if alpha is not None:
                result.putalpha(alpha)
            return result

        _check_size(rgb)
        return Prepared(rgb, restore_pil)

    if image is None:
        raise InvalidInput("expected an image (HxWx3 uint8 numpy array or PIL.Image), got None")
    if not isinstance(image, np.ndarray):
        raise InvalidInput(f"expected an image (HxWx3 uint8 numpy array or PIL.Image), got {type(image).__name__}")
    if image.dtype != np.uint8:
        hint = " (scale [0, 1] floats with (img * 255).round().astype(np.uint8))" if image.dtype.kind == "f" else ""
        raise InvalidInput(f"expected a uint8 image, got dtype {image.dtype}{hint}")
    if image.size == 0:
        raise InvalidInput(f"expected a non-empty image, got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:  # grayscale: stylized in colour, returned as HxWx3
        return _checked(Prepared(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB), _to_order(channel_order)))
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidInput(
            f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {image.shape} "
            "(channels-first arrays must be transposed to HxWxC)"
        )
    order = channel_order.lower()
    if image.shape[2] == 4:  # the alpha channel is kept as it is
        alpha = image[:, :, 3:]
        colour = image[:, :, :3]
        rgb = colour[:, :, ::-1] if order == "bgr" else colour
        to_order = _to_order(order)
        return _checked(Prepared(np.ascontiguousarray(rgb), lambda out: np.concatenate([to_order(out), alpha], 2)))
    rgb = image[:, :, ::-1] if order == "bgr" else image
    return _checked(Prepared(np.ascontiguousarray(rgb), _to_order(order)))


def _to_order(channel_order: str) -> Callable[[np.ndarray], np.ndarray]:
    if channel_order.lower() == "bgr":
        return lambda out: np.ascontiguousarray(out[:, :, ::-1])
    return lambda out: out


def _check_size(rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    if h * w > MAX_PIXELS:
        raise InvalidInput(f"image of {w}x{h} pixels is larger than the {MAX_PIXELS:,}-pixel limit")


def _checked(prepared: Prepared) -> Prepared:
    _check_size(prepared.rgb)
    return prepared


# --------------------------------------------------------------------------- model I/O


def to_model(rgbs: list[np.ndarray], low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Equal-size HxWx3 uint8 RGB images -> float32 Nx3xHxW in [low, high]."""
    batch = np.stack(rgbs).transpose(0, 3, 1, 2).astype(np.float32)
    return batch * ((high - low) / 255.0) + low


def from_model(batch: np.ndarray, low: float = -1.0, high: float = 1.0) -> list[np.ndarray]:
    """float32 Nx3xHxW in [low, high] -> HxWx3 uint8 RGB images."""
    scaled = (batch - low) * (255.0 / (high - low))
    images = np.clip(scaled + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(image) for image in images]


def padded_size(h: int, w: int, multiple: int, min_side: int) -> tuple[int, int]:
    def up(n: int) -> int:
        return max(min_side, -(-n // multiple) * multiple)

    return up(h), up(w)


def pad_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Reflect-pad at the bottom and right (edge-pad where the image is too small to reflect)."""
    h, w = rgb.shape[:2]
    pad = ((0, size[0] - h), (0, size[1] - w), (0, 0))
    if pad[0][1] == 0 and pad[1][1] == 0:
        return rgb
    mode = "reflect" if min(h, w) > 1 else "edge"
    return np.pad(rgb, pad, mode=mode)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels covering `length`, overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """1-D weights that ramp up over `overlap` pixels at both ends (never zero)."""
    ramp = np.minimum(np.arange(1, tile + 1), np.arange(tile, 0, -1)).astype(np.float32)
    return np.minimum(ramp / (overlap + 1), 1.0)


def preserve_colour(source_rgb: np.ndarray, cartoon_rgb: np.ndarray) -> np.ndarray:
    """Luma (structure, shading) from the cartoon; chroma (colours) from the source."""
    source = cv2.cvtColor(source_rgb, cv2.COLOR_RGB2YCrCb)
    cartoon = cv2.cvtColor(cartoon_rgb, cv2.COLOR_RGB2YCrCb)
    cartoon[:, :, 1:] = source[:, :, 1:]
    return cv2.cvtColor(cartoon, cv2.COLOR_YCrCb2RGB)
