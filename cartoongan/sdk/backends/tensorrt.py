"""Native TensorRT: a deserialized engine, one execution context per thread, pinned buffers, one stream.

Given an .onnx model the engine comes from the engine cache (built on first use,
see `cartoongan.sdk.engine_cache`); given a .plan engine it is checked against its
sidecar and refused, with the command that fixes it, if it was built elsewhere.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from cartoongan.errors import BackendUnavailable, InvalidInput, ModelError
from cartoongan.sdk.backends.base import Backend
from cartoongan.sdk.model import ModelInfo

log = logging.getLogger(__name__)


class _Context:
    """What one thread needs: an execution context, a stream and I/O buffers sized for the profile's maximum."""

    def __init__(self, engine, cuda, input_name: str, output_name: str, max_shape: tuple[int, ...], dtype):
        self.cuda = cuda
        self.context = engine.create_execution_context()
        self.stream = cuda.stream()
        self.dtypes = dtype
        self.host_in = cuda.pinned_array(max_shape, dtype[0])
        self.host_out = cuda.pinned_array(max_shape, dtype[1])
        self.device_in = cuda.device_alloc(self.host_in.nbytes)
        self.device_out = cuda.device_alloc(self.host_out.nbytes)
        self.context.set_tensor_address(input_name, self.device_in)
        self.context.set_tensor_address(output_name, self.device_out)
        self.input_name = input_name

    def run(self, batch: np.ndarray) -> np.ndarray:
        n = int(np.prod(batch.shape))
        host_in = self.host_in.reshape(-1)[:n].reshape(batch.shape)
        np.copyto(host_in, batch, casting="same_kind")
        self.context.set_input_shape(self.input_name, batch.shape)
        self.cuda.to_device(self.device_in, host_in, self.stream)
        if not self.context.execute_async_v3(self.cuda.stream_handle(self.stream)):
            raise BackendUnavailable(f"TensorRT failed to run a {batch.shape} batch")
        host_out = self.host_out.reshape(-1)[:n].reshape(batch.shape)
        self.cuda.to_host(host_out, self.device_out, self.stream)
        self.cuda.synchronize(self.stream)
        return host_out.astype(np.float32, copy=True)

    def close(self) -> None:
        for pointer in (self.device_in, self.device_out):
            self.cuda.free(pointer)
        for array in (self.host_in, self.host_out):
            self.cuda.free_pinned(array)
        self.context = None


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, model_path, strict: bool = False, precision: str = "auto", profile=None,
                 engine_cache=None, rebuild: bool = True):  # fmt: skip
        super().__init__(model_path, strict)
        self.precision = "fp16" if precision in ("auto", None) else precision  # what TensorRT is for
        self.profile = profile
        self.cache_dir = engine_cache
        self.rebuild = rebuild
        self.engine_path: Path | None = None
        self._local = threading.local()
        self._contexts: list[_Context] = []
        self._lock = threading.Lock()

    @classmethod
    def available(cls) -> bool:
        from importlib.util import find_spec

        if find_spec("tensorrt") is None:
            return False
        try:
            from cartoongan.sdk.cuda import Cuda

            Cuda.load()
            return True
        except Exception:  # no CUDA library or no GPU
            return False

    def load(self) -> ModelInfo:
        from cartoongan._deps import require
        from cartoongan.export.engine import Profile
        from cartoongan.sdk.cuda import Cuda
        from cartoongan.sdk.engine_cache import cached_engine, check_engine

        trt = require("tensorrt", "the TensorRT backend")
        self.cuda = Cuda.load()
        if self.model_path.suffix in (".plan", ".engine"):
            sidecar = check_engine(self.model_path)
            self.engine_path = self.model_path
        elif self.model_path.suffix == ".onnx":
            profile = self.profile or Profile()
            self.engine_path = cached_engine(self.model_path, self.precision, profile, self.cache_dir, self.rebuild)
            sidecar = check_engine(self.engine_path)
        else:
            raise ModelError(f"{self.model_path}: the TensorRT backend takes an .onnx model or a .plan engine")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise ModelError(f"{self.engine_path}: TensorRT {trt.__version__} cannot deserialize this engine")
        self.input_name, self.output_name = sidecar["input_name"], sidecar["output_name"]
        self.max_shape = tuple(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])
        self.min_shape = tuple(self.engine.get_tensor_profile_shape(self.input_name, 0)[0])
        to_numpy = {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16}
        self.io_dtypes = (to_numpy[self.engine.get_tensor_dtype(self.input_name)],
                          to_numpy[self.engine.get_tensor_dtype(self.output_name)])  # fmt: skip
        meta = sidecar.get("model_metadata", {})
        self.info = ModelInfo(
            path=self.model_path,
            arch=meta.get("cartoongan.arch", "unknown"),
            precision=sidecar["precision"],
            input_name=self.input_name,
            output_name=self.output_name,
            spatial_multiple=int(meta.get("cartoongan.spatial_multiple", 4)),
            min_side=max(int(meta.get("cartoongan.min_side", 8)), min(self.min_shape[2:])),
            channel_order=meta.get("cartoongan.channel_order", "RGB").upper(),
        )
        return self.info

    def _context(self) -> _Context:
        context = getattr(self._local, "context", None)
        if context is None:
            context = _Context(self.engine, self.cuda, self.input_name, self.output_name, self.max_shape,
                               self.io_dtypes)  # fmt: skip
            self._local.context = context
            with self._lock:
                self._contexts.append(context)
        return context

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        _, _, h, w = batch.shape
        max_n, _, max_h, max_w = self.max_shape
        _, _, min_h, min_w = self.min_shape
        if not (min_h <= h <= max_h and min_w <= w <= max_w):
            raise InvalidInput(
                f"tensorrt backend: {h}x{w} is outside the engine's profile ({min_h}x{min_w} to {max_h}x{max_w}); "
                "build the engine with a larger --max-shape, or use tile_size / max_side"
            )
        context = self._context()
        # batches larger than the profile allows run in chunks
        return np.concatenate([context.run(batch[i : i + max_n]) for i in range(0, len(batch), max_n)])

    @property
    def granted(self) -> list[str]:
        return [f"TensorRT ({self.engine_path.name})"] if self.engine_path else []

    def close(self) -> None:
        with self._lock:
            for context in self._contexts:
                context.close()
            self._contexts.clear()
        self._local = threading.local()
        self.engine = None
        super().close()
