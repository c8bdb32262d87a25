"""Inference backends: small classes with load / run / close, picked by name or "auto"."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from cartoongan.errors import BackendUnavailable, InvalidInput, MissingDependency
from cartoongan.sdk.backends.base import Backend
from cartoongan.sdk.backends.onnxruntime import OnnxRuntimeBackend
from cartoongan.sdk.backends.openvino import OpenVINOBackend
from cartoongan.sdk.backends.tensorrt import TensorRTBackend

log = logging.getLogger(__name__)

# name -> (factory(model_path, strict, options), is_available()); "auto" tries them in this order, fastest
# first. `options` carries the GPU settings (precision, engine_cache, profile); CPU backends ignore them.
Factory = Callable[[Path, bool, dict], Backend]
BACKENDS: dict[str, tuple[Factory, Callable[[], bool]]] = {
    "tensorrt": (
        lambda path, strict, options: TensorRTBackend(path, strict, **options),
        TensorRTBackend.available,
    ),
    "onnxruntime-tensorrt": (
        lambda path, strict, options: OnnxRuntimeBackend(path, "tensorrt", strict, gpu_options=options),
        lambda: OnnxRuntimeBackend.available("tensorrt"),
    ),
    "onnxruntime-cuda": (
        lambda path, strict, options: OnnxRuntimeBackend(path, "cuda", strict, gpu_options=options),
        lambda: OnnxRuntimeBackend.available("cuda"),
    ),
    "openvino": (lambda path, strict, options: OpenVINOBackend(path, strict), OpenVINOBackend.available),
    "onnxruntime-cpu": (
        lambda path, strict, options: OnnxRuntimeBackend(path, "cpu", strict),
        lambda: OnnxRuntimeBackend.available("cpu"),
    ),
}
ALIASES = {
    "onnxruntime": "onnxruntime-cpu",
    "ort": "onnxruntime-cpu",
    "cpu": "onnxruntime-cpu",
    "cuda": "onnxruntime-cuda",
    "trt": "tensorrt",
}


def available_backends() -> list[str]:
    return [name for name, (_, is_available) in BACKENDS.items() if is_available()]


def open_backend(name: str, model_path: Path, strict: bool = False, **options) -> Backend:
    """Create and load a backend by name; "auto" takes the fastest one that really gets its device.

    `options` (precision, engine_cache, profile) reach the GPU backends only.
    """
    name = ALIASES.get(name, name)
    if name != "auto":
        if name not in BACKENDS:
            raise InvalidInput(f"unknown backend {name!r}; expected 'auto' or one of {sorted(BACKENDS)}")
        backend = BACKENDS[name][0](model_path, strict, options)
        backend.load()
        return backend
    reasons = []
    for candidate, (factory, is_available) in BACKENDS.items():
        if not is_available():
            continue
        backend = factory(model_path, True, options)  # auto never accepts a silent provider fallback
        try:
            backend.load()
            return backend
        except (BackendUnavailable, MissingDependency) as exc:
            reasons.append(str(exc))
            log.info("auto backend: skipping %s: %s", candidate, exc)
    raise BackendUnavailable("no backend could load the model: " + "; ".join(reasons))


__all__ = ["ALIASES", "BACKENDS", "Backend", "TensorRTBackend", "available_backends", "open_backend"]
