"""Lazy imports of optional, heavy dependencies with an error that names the extra."""

from __future__ import annotations

import importlib
from importlib.util import find_spec
from types import ModuleType

from cartoongan.errors import MissingDependency

# module name -> (pip extra, human name)
_EXTRAS = {
    "torch": "train",
    "safetensors": "train",
    "tqdm": "train",
    "yaml": "train",
    "h5py": "train",
    "onnx": "export",
    "onnxscript": "export",
}


def is_available(module: str) -> bool:
    return find_spec(module) is not None


def require(module: str, feature: str = "this feature") -> ModuleType:
    """Import `module`, or raise MissingDependency saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module.split(".")[0])
        hint = f'pip install "cartoongan[{extra}]"' if extra else f"pip install {module}"
        raise MissingDependency(f"{feature} needs the '{module}' package, which is not installed: {hint}") from exc
