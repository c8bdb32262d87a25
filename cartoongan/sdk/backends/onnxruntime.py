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


def provider_options(
    device: str, precision: str = "auto", engine_cache: str | Path | None = None, profile=None, input_name="image"
) -> list[dict]:
    """Options for each provider of `PROVIDERS[device]`, in the same order.

    TensorRT EP: FP16 when asked (or "auto"), engines and timing caches kept on disk (a restart does
    not rebuild them), and an explicit shape profile so one engine serves every size in it.
    CUDA EP: the largest cuDNN workspace, so the fastest convolution algorithms are allowed.
    """
    from cartoongan.export.engine import Profile
    from cartoongan.sdk.engine_cache import default_cache_dir

    cuda = {"cudnn_conv_use_max_workspace": "1", "do_copy_in_default_stream": "1"}
    if device == "cpu":
        return [{}]
    if device == "cuda":
        return [cuda, {}]
    profile = profile or Profile()
    cache = Path(engine_cache) if engine_cache is not None else default_cache_dir()
    cache = cache / "onnxruntime-tensorrt"
    shape = lambda dims: f"{input_name}:{'x'.join(map(str, dims))}"  # noqa: E731
    tensorrt = {
        "trt_fp16_enable": "1" if precision in ("auto", "fp16") else "0",
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": str(cache),
        "trt_profile_min_shapes": shape(profile.min),
        "trt_profile_opt_shapes": shape(profile.opt),
        "trt_profile_max_shapes": shape(profile.max),
    }
    return [tensorrt, cuda, {}]


class OnnxRuntimeBackend(Backend):
    def __init__(
        self, model_path: str | Path, device: str = "cpu", strict: bool = False, threads: int = 0,
        gpu_options: dict | None = None,
    ):  # fmt: skip
        super().__init__(model_path, strict)
        self.device = device
        self.name = f"onnxruntime-{device}"
        self.threads = threads
        self.gpu_options = gpu_options or {}
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
        providers = list(zip(wanted, provider_options(self.device, **self.gpu_options)))
        try:
            self.session = ort.InferenceSession(str(self.model_path), options, providers=providers)
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
