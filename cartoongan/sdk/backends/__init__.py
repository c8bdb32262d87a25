"""Inference backends: small classes with load / run / close, picked by name or "auto"."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from cartoongan.errors import BackendUnavailable, InvalidInput
from cartoongan.sdk.backends.base import Backend
from cartoongan.sdk.backends.onnxruntime import OnnxRuntimeBackend
from cartoongan.sdk.backends.openvino import OpenVINOBackend

log = logging.getLogger(__name__)

# name -> (factory(model_path, strict), is_available()); "auto" tries them in this order, fastest first.
BACKENDS: dict[str, tuple[Callable[[Path, bool], Backend], Callable[[], bool]]] = {
    "onnxruntime-tensorrt": (
        lambda path, strict: OnnxRuntimeBackend(path, "tensorrt", strict),
        lambda: OnnxRuntimeBackend.available("tensorrt"),
    ),
    "onnxruntime-cuda": (
        lambda path, strict: OnnxRuntimeBackend(path, "cuda", strict),
        lambda: OnnxRuntimeBackend.available("cuda"),
    ),
    "openvino": (lambda path, strict: OpenVINOBackend(path, strict), OpenVINOBackend.available),
    "onnxruntime-cpu": (
        lambda path, strict: OnnxRuntimeBackend(path, "cpu", strict),
        lambda: OnnxRuntimeBackend.available("cpu"),
    ),
}
ALIASES = {
    "onnxruntime": "onnxruntime-cpu",
    "ort": "onnxruntime-cpu",
    "cpu": "onnxruntime-cpu",
    "cuda": "onnxruntime-cuda",
}


def available_backends() -> list[str]:
    return [name for name, (_, is_available) in BACKENDS.items() if is_available()]


def open_backend(name: str, model_path: Path, strict: bool = False) -> Backend:
    """Create and load a backend by name; "auto" takes the fastest one that really gets its device."""
    name = ALIASES.get(name, name)
    if name != "auto":
        if name not in BACKENDS:
            raise InvalidInput(f"unknown backend {name!r}; expected 'auto' or one of {sorted(BACKENDS)}")
        backend = BACKENDS[name][0](model_path, strict)
        backend.load()
        return backend
    reasons = []
    for candidate, (factory, is_available) in BACKENDS.items():
        if not is_available():
            continue
        backend = factory(model_path, True)  # auto never accepts a silent provider fallback
        try:
            backend.load()
            return backend
        except BackendUnavailable as exc:
            reasons.append(str(exc))
            log.info("auto backend: skipping %s: %s", candidate, exc)
    raise BackendUnavailable("no backend could load the model: " + "; ".join(reasons))


__all__ = ["ALIASES", "BACKENDS", "Backend", "available_backends", "open_backend"]
