"""`Cartoonizer`: the whole public API of the runtime.

    from cartoongan import Cartoonizer
    cartoon = Cartoonizer().run(cv2.imread("photo.jpg"))   # BGR uint8 in, BGR uint8 out
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from cartoongan.errors import InvalidInput, ModelError
from cartoongan.sdk import image as im
from cartoongan.sdk.backends import open_backend
from cartoongan.sdk.model import ModelInfo, default_model_path

PRECISIONS = ("auto", "fp32", "fp16", "int8")


def resolve_model(model: str | Path | None, precision: str) -> Path:
    """The ONNX file to load: the shipped default (in the asked precision) or the user's file."""
    if model is None:
        path = default_model_path()
        if precision in ("fp16", "int8"):
            variant = path.with_name(f"{path.stem}.{precision}.onnx")
            if not variant.is_file():
                raise ModelError(f"the default model ships no {precision} variant ({variant.name}); use fp32 or auto")
            return variant
        return path
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; expected an .onnx file made by `cartoongan export onnx`")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty; expected an .onnx file made by `cartoongan export onnx`")
    return path


class Cartoonizer:
    """Photo -> cartoon with an exported CartoonGAN generator.

    Args:
        model: path to an exported .onnx model; None loads the default model shipped in the package.
        backend: "auto" (fastest available: native TensorRT, ONNX Runtime TensorRT/CUDA, OpenVINO, ONNX Runtime
            CPU) or one of those by name ("tensorrt", "onnxruntime-tensorrt", "onnxruntime-cuda", "openvino",
            "onnxruntime-cpu").
        precision: "auto", "fp32", "fp16" or "int8". For the default model it picks the shipped
            variant; a model file must match it (its precision is in its metadata).
        channel_order: "bgr" (OpenCV, the default) or "rgb" for numpy inputs and outputs.
        max_side: if set, images whose long side is larger are stylized at that size and resized back.
        tile_size: images with a side above this run in overlapping tiles (bounded memory).
        tile_overlap: pixels shared by neighbouring tiles, blended linearly.
        preserve_color: keep the input's colours; take structure and shading from the cartoon.
        batch_size: most images (or tiles) sent to the model at once.
        strict: raise instead of running on another execution provider than the one asked for.
        engine_cache: folder for TensorRT engines built on first use (default ~/.cache/cartoongan/engines,
            or $CARTOONGAN_ENGINE_CACHE).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        backend: str = "auto",
        precision: str = "auto",
        *,
        channel_order: str = "bgr",
        max_side: int | None = None,
        tile_size: int = 1024,
        tile_overlap: int = 64,
        preserve_color: bool = False,
        batch_size: int = 4,
        strict: bool = False,
        engine_cache: str | Path | None = None,
    ):
        if precision not in PRECISIONS:
            raise InvalidInput(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if channel_order.lower() not in ("bgr", "rgb"):
            raise InvalidInput(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if max_side is not None and max_side < 8:
            raise InvalidInput(f"max_side must be at least 8 pixels, got {max_side}")
        if tile_size < 64 or tile_size % 4:
            raise InvalidInput(f"tile_size must be a multiple of 4, at least 64, got {tile_size}")
        if not 0 <= tile_overlap < tile_size // 2:
            raise InvalidInput(f"tile_overlap must be between 0 and tile_size / 2, got {tile_overlap}")
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        self.channel_order = channel_order.lower()
        self.max_side = max_side
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.preserve_color = preserve_color
        self.batch_size = batch_size

        path = resolve_model(model, precision)
        self._backend = open_backend(backend, path, strict, precision=precision, engine_cache=engine_cache)
        self.info: ModelInfo = self._backend.info
        builds_own = self.backend in ("tensorrt", "onnxruntime-tensorrt")  # an fp32 ONNX in, an fp16 engine out
        if precision != "auto" and model is not None and self.info.precision != precision and not builds_own:
            self.close()
            raise ModelError(
                f"{path} is a {self.info.precision} model, but precision={precision!r} was asked for; "
                f"export one with `cartoongan export onnx CHECKPOINT --precision {precision}`"
            )

    # ---- what was really granted

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def providers(self) -> list[str]:
        return self._backend.granted

    def __repr__(self) -> str:
        return f"Cartoonizer(model={str(self.info.path)!r}, backend={self.backend!r}, providers={self.providers})"

    # ---- inference

    def run(self, image: Any, *, preserve_color: bool | None = None, max_side: int | None = None) -> Any:
        """Stylize one image, or a list of images as a batch.

        Accepts numpy uint8 arrays (HxWx3 in `channel_order`; HxW or HxWx1 grayscale, returned
        as HxWx3; HxWx4 with alpha, returned with the same alpha) and PIL images (returned as
        PIL images). Any size works; the output has the input's size.
        """
        if isinstance(image, (list, tuple)):
            prepared = []
            for index, item in enumerate(image):
                try:
                    prepared.append(im.prepare(item, self.channel_order))
                except InvalidInput as exc:
                    raise InvalidInput(f"image {index} of the batch: {exc}") from None
            return [p.restore(out) for p, out in zip(prepared, self._stylize(prepared, preserve_color, max_side))]
        prepared = im.prepare(image, self.channel_order)
        return prepared.restore(self._stylize([prepared], preserve_color, max_side)[0])

    __call__ = run

    def stream(
        self,
        frames: Iterable[Any],
        batch_size: int | None = None,
        queue_size: int = 8,
        *,
        preserve_color: bool | None = None,
        max_side: int | None = None,
    ) -> Iterator[Any]:
        """Stylize an iterable of frames (e.g. video), in order, with reading and inference in threads.

        Memory stays bounded by `queue_size`; errors from the source or the model are raised here;
        no thread outlives the iteration (also when the caller stops early or is interrupted).
        """
        from cartoongan.sdk.stream import stream

        def run_batch(batch: list[Any]) -> list[Any]:
            return self.run(batch, preserve_color=preserve_color, max_side=max_side)

        return stream(run_batch, frames, batch_size or self.batch_size, queue_size)

    def _stylize(self, prepared: list[im.Prepared], preserve_color: bool | None, max_side: int | None) -> list:
        max_side = max_side or self.max_side
        keep_colour = self.preserve_color if preserve_color is None else preserve_color
        sources = [p.rgb for p in prepared]
        work = [self._shrink(rgb, max_side) for rgb in sources]
        results: list[np.ndarray | None] = [None] * len(work)

        small = [i for i, rgb in enumerate(work) if max(rgb.shape[:2]) <= self.tile_size]
        for i in set(range(len(work))) - set(small):
            results[i] = self._run_tiled(work[i])
        # images that pad to the same size travel together
        groups: dict[tuple[int, int], list[int]] = {}
        for i in small:
            size = im.padded_size(*work[i].shape[:2], self.info.spatial_multiple, self.info.min_side)
            groups.setdefault(size, []).append(i)
        for size, members in groups.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                outs = self._infer([im.pad_to(work[i], size) for i in chunk])
                for i, out in zip(chunk, outs):
                    h, w = work[i].shape[:2]
                    results[i] = out[:h, :w]

        final = []
        for source, out in zip(sources, results):
            if out.shape[:2] != source.shape[:2]:
                out = cv2.resize(out, (source.shape[1], source.shape[0]), interpolation=cv2.INTER_CUBIC)
            final.append(im.preserve_colour(source, out) if keep_colour else np.ascontiguousarray(out))
        return final

    def _shrink(self, rgb: np.ndarray, max_side: int | None) -> np.ndarray:
        h, w = rgb.shape[:2]
        if not max_side or max(h, w) <= max_side:
            return rgb
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    def _infer(self, rgbs: list[np.ndarray]) -> list[np.ndarray]:
        low, high = self.info.input_range
        if self.info.channel_order == "BGR":
            rgbs = [rgb[:, :, ::-1] for rgb in rgbs]
        outs = im.from_model(self._backend.run(im.to_model(rgbs, low, high)), low, high)
        return [out[:, :, ::-1] for out in outs] if self.info.channel_order == "BGR" else outs

    def _run_tiled(self, rgb: np.ndarray) -> np.ndarray:
        """Overlapping tiles, blended with linear ramps: bounded memory for any image size."""
        h, w = rgb.shape[:2]
        tile, overlap = self.tile_size, self.tile_overlap
        padded = im.pad_to(rgb, (max(h, tile), max(w, tile)))  # tiles are always full-size
        ph, pw = padded.shape[:2]
        ramp = im.blend_weights(tile, overlap)
        weight_tile = np.outer(ramp, ramp)[:, :, None]
        acc = np.zeros((ph, pw, 3), np.float32)
        norm = np.zeros((ph, pw, 1), np.float32)
        boxes = [(y, x) for y in im.tile_starts(ph, tile, overlap) for x in im.tile_starts(pw, tile, overlap)]
        for start in range(0, len(boxes), self.batch_size):
            chunk = boxes[start : start + self.batch_size]
            outs = self._infer([padded[y : y + tile, x : x + tile] for y, x in chunk])
            for (y, x), out in zip(chunk, outs):
                acc[y : y + tile, x : x + tile] += out.astype(np.float32) * weight_tile
                norm[y : y + tile, x : x + tile] += weight_tile
        return np.clip(acc / norm + 0.5, 0, 255).astype(np.uint8)[:h, :w]

    # ---- lifetime

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Cartoonizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
