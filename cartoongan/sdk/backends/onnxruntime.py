"""ONNX Runtime: CPU, and the CUDA and TensorRT execution providers of onnxruntime-gpu."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cartoongan.errors import BackendUnavailable, ModelError
from cartoongan.sdk.backends.base import Backend
from cartoongan.sdk.model import ModelInfo

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeBackend(Backend):
    def __init__(self, model_path: str | Path, device: str = "cpu", strict: bool = False, threads: int = 0):
        super().__init__(model_path, strict)
        self.device = device
        self.name = f"onnxruntime-{device}"
        self.threads = threads
        self.session = None

    @classmethod
    def available(cls, device: str = "cpu") -> bool:
        import onnxruntime as ort

        return PROVIDERS[device][0] in ort.get_available_providers()

    def load(self) -> ModelInfo:
        import onnxruntime as ort

        wanted = PROVIDERS[self.device]
        if not self.available(self.device):
            raise BackendUnavailable(
                f"{self.name}: ONNX Runtime here has no {wanted[0]} (available: {ort.get_available_providers()}); "
                "install onnxruntime-gpu (pip install \"cartoongan[gpu]\") on a machine with an NVIDIA GPU"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.model_path), options, providers=wanted)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise ModelError(f"{self.model_path}: ONNX Runtime cannot load it as an ONNX model ({exc})") from None
        granted = self.session.get_providers()
        if granted[0] != wanted[0]:
            message = f"{self.name}: asked for {wanted[0]} but ONNX Runtime granted {granted}"
            if self.strict:
                self.session = None
                raise BackendUnavailable(message)
            log.warning("%s; running on %s", message, granted[0])
        self.info = ModelInfo.from_session(self.model_path, self.session)
        return self.info

    @property
    def granted(self) -> list[str]:
        return self.session.get_providers() if self.session is not None else []

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self.info.output_name], {self.info.input_name: batch})
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None
        super().close()
