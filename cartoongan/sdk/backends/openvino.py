"""OpenVINO for Intel CPUs (optional: pip install openvino)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np

from cartoongan.errors import BackendUnavailable, ModelError
from cartoongan.sdk.backends.base import Backend
from cartoongan.sdk.model import ModelInfo


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, model_path: str | Path, strict: bool = False, device: str = "CPU"):
        super().__init__(model_path, strict)
        self.device = device
        self.compiled = None

    @classmethod
    def available(cls) -> bool:
        return find_spec("openvino") is not None

    def load(self) -> ModelInfo:
        if not self.available():
            raise BackendUnavailable("openvino backend: the 'openvino' package is not installed: pip install openvino")
        import onnxruntime as ort
        import openvino as ov

        # The model contract (names, shapes, metadata) is read the same way as for ONNX Runtime.
        try:
            probe = ort.InferenceSession(str(self.model_path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{self.model_path}: cannot be loaded as an ONNX model ({exc})") from None
        self.info = ModelInfo.from_session(self.model_path, probe)
        del probe
        core = ov.Core()
        self.compiled = core.compile_model(str(self.model_path), self.device, {"PERFORMANCE_HINT": "LATENCY"})
        return self.info

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        request = self.compiled.create_infer_request()  # one per call: thread-safe
        request.infer({0: batch})
        return np.asarray(request.get_output_tensor(0).data, dtype=np.float32).copy()

    def close(self) -> None:
        self.compiled = None
        super().close()
