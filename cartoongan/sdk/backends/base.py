"""The backend contract; input checks live here once, before any backend runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from cartoongan.errors import InvalidInput
from cartoongan.sdk.model import ModelInfo


class Backend(ABC):
    """Runs one model: `load()` once, `run(batch)` many times (thread-safe), `close()`."""

    name: str = "base"

    def __init__(self, model_path: str | Path, strict: bool = False):
        self.model_path = Path(model_path)
        self.strict = strict
        self.info: ModelInfo | None = None

    @classmethod
    @abstractmethod
    def available(cls) -> bool:
        """Whether this backend can run on this machine (package and device present)."""

    @abstractmethod
    def load(self) -> ModelInfo: ...

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:
        self.info = None

    @property
    def granted(self) -> list[str]:
        """What really runs the model (e.g. ONNX Runtime's providers)."""
        return [self.name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 Nx3xHxW in the model's input range -> float32 Nx3xHxW."""
        if self.info is None:
            raise InvalidInput(f"{self.name} backend: call load() before run()")
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[1] != 3:
            got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
            raise InvalidInput(f"{self.name} backend: expected a float32 Nx3xHxW array, got {got}")
        m = self.info.spatial_multiple
        if batch.shape[2] % m or batch.shape[3] % m or min(batch.shape[2:]) < self.info.min_side:
            raise InvalidInput(
                f"{self.name} backend: height and width must be multiples of {m} and at least "
                f"{self.info.min_side}, got {batch.shape[2]}x{batch.shape[3]}"
            )
        return self._infer(np.ascontiguousarray(batch))

    def __enter__(self) -> "Backend":
        self.load()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
