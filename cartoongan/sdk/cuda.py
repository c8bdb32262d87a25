"""The few CUDA runtime calls the TensorRT path needs, behind one small interface.

pycuda (named in our design) is used when it is installed; it builds from source
only, against CUDA headers, so cuda-python (wheels, `cuda.bindings.runtime`) is the
fallback. Everything else in the package talks to `Cuda`, never to either library.
"""

from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass

import numpy as np

from cartoongan.errors import BackendUnavailable, MissingDependency

INSTALL_HINT = 'pip install "cartoongan[tensorrt]" (cuda-python), or pycuda where it can build'


@dataclass(frozen=True)
class GpuIdentity:
    name: str
    compute_capability: str  # "9.0"


def _import_first(*names: str):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class Cuda:
    """Device and pinned host memory, one stream, async copies. `Cuda.load()` picks the library."""

    library = "none"

    @staticmethod
    def load() -> "Cuda":
        if _import_first("pycuda.driver") is not None:
            return _PyCuda()
        runtime = _import_first("cuda.bindings.runtime", "cuda.cudart")  # cuda-python >= 12.6, older
        if runtime is not None:
            return _CudaPython(runtime)
        raise MissingDependency(f"the TensorRT backend needs pycuda or cuda-python for GPU memory: {INSTALL_HINT}")

    # the interface: pointers are ints, streams are opaque
    def identity(self, device: int = 0) -> GpuIdentity: ...
    def device_alloc(self, nbytes: int) -> int: ...
    def pinned_array(self, shape: tuple[int, ...], dtype) -> np.ndarray: ...
    def stream(self): ...
    def stream_handle(self, stream) -> int: ...
    def to_device(self, dst: int, src: np.ndarray, stream) -> None: ...
    def to_host(self, dst: np.ndarray, src: int, stream) -> None: ...
    def synchronize(self, stream) -> None: ...
    def free(self, pointer: int) -> None: ...
    def free_pinned(self, array: np.ndarray) -> None: ...


class _CudaPython(Cuda):
    library = "cuda-python"

    def __init__(self, runtime):
        self.rt = runtime
        self._pinned: dict[int, int] = {}  # id(array) -> host pointer, freed with the backend
        count = self._call(self.rt.cudaGetDeviceCount)
        if count < 1:
            raise BackendUnavailable("cuda-python is installed but sees no CUDA GPU")

    def _call(self, fn, *args):
        err, *out = fn(*args)
        if int(err) != 0:
            raise BackendUnavailable(f"CUDA {fn.__name__} failed: {err}")
        return out[0] if len(out) == 1 else tuple(out)

    def identity(self, device: int = 0) -> GpuIdentity:
        props = self._call(self.rt.cudaGetDeviceProperties, device)
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        return GpuIdentity(name.strip("\x00 "), f"{props.major}.{props.minor}")

    def device_alloc(self, nbytes: int) -> int:
        return int(self._call(self.rt.cudaMalloc, nbytes))

    def pinned_array(self, shape, dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer = int(self._call(self.rt.cudaMallocHost, nbytes))
        buffer = (ctypes.c_byte * nbytes).from_address(pointer)
        array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
        self._pinned[id(array)] = pointer
        return array

    def stream(self):
        return self._call(self.rt.cudaStreamCreate)

    def stream_handle(self, stream) -> int:
        return int(stream)

    def to_device(self, dst: int, src: np.ndarray, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self.rt.cudaMemcpyAsync, dst, src.ctypes.data, src.nbytes, kind, stream)

    def to_host(self, dst: np.ndarray, src: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self.rt.cudaMemcpyAsync, dst.ctypes.data, src, dst.nbytes, kind, stream)

    def synchronize(self, stream) -> None:
        self._call(self.rt.cudaStreamSynchronize, stream)

    def free(self, pointer: int) -> None:
        self.rt.cudaFree(pointer)

    def free_pinned(self, array: np.ndarray) -> None:
        pointer = self._pinned.pop(id(array), None)
        if pointer is not None:
            self.rt.cudaFreeHost(pointer)


class _PyCuda(Cuda):
    library = "pycuda"

    def __init__(self):
        import pycuda.autoinit  # noqa: F401  (creates and activates a context on device 0)
        import pycuda.driver as driver

        self.driver = driver
        self._allocations: dict[int, object] = {}

    def identity(self, device: int = 0) -> GpuIdentity:
        dev = self.driver.Device(device)
        major, minor = dev.compute_capability()
        return GpuIdentity(dev.name(), f"{major}.{minor}")

    def device_alloc(self, nbytes: int) -> int:
        allocation = self.driver.mem_alloc(nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def pinned_array(self, shape, dtype) -> np.ndarray:
        return self.driver.pagelocked_empty(shape, dtype)

    def stream(self):
        return self.driver.Stream()

    def stream_handle(self, stream) -> int:
        return stream.handle

    def to_device(self, dst: int, src: np.ndarray, stream) -> None:
        self.driver.memcpy_htod_async(dst, src, stream)

    def to_host(self, dst: np.ndarray, src: int, stream) -> None:
        self.driver.memcpy_dtoh_async(dst, src, stream)

    def synchronize(self, stream) -> None:
        stream.synchronize()

    def free(self, pointer: int) -> None:
        allocation = self._allocations.pop(pointer, None)
        if allocation is not None:
            allocation.free()

    def free_pinned(self, array: np.ndarray) -> None:
        pass  # freed with the array
