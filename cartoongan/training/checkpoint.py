"""Atomic files and safetensors checkpoints.

A checkpoint is one `.safetensors` file: the tensors (generator, discriminator,
optimiser moments, RNG state) plus, in its metadata, a JSON document with the
config, phase, step and optimiser hyper-parameters. A readable copy of that JSON
sits beside it. Every file is written to a temporary name and renamed, so a
crash never leaves a half-written checkpoint under a real name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cartoongan._deps import require
from cartoongan._io import atomic_write_bytes
from cartoongan.errors import CheckpointError

META_KEY = "cartoongan"
FORMAT_VERSION = 1


def save(path: Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write `tensors` and `meta` atomically to `path` (.safetensors) and `path.with_suffix('.json')`."""
    st = require("safetensors.torch", "saving checkpoints")
    meta = {"format_version": FORMAT_VERSION, **meta}
    blob = json.dumps(meta, sort_keys=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st.save(tensors, metadata={META_KEY: blob}))
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True).encode())


def load(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, meta) of a checkpoint written by `save`; never unpickles anything."""
    st = require("safetensors.torch", "loading checkpoints")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = path.read_bytes()
        tensors = st.load(data)
        from safetensors import safe_open  # metadata lives in the header

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if META_KEY not in header:
        raise CheckpointError(f"{path}: a safetensors file, but not a cartoongan checkpoint (no '{META_KEY}' metadata)")
    meta = json.loads(header[META_KEY])
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    return tensors, meta


def flatten_optimizer(prefix: str, state_dict: dict) -> tuple[dict[str, Any], list]:
    """Optimizer state -> (flat tensors, JSON-able param_groups)."""
    tensors = {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            tensors[f"{prefix}.{index}.{name}"] = value if hasattr(value, "shape") else _as_tensor(value)
    return tensors, state_dict["param_groups"]


def unflatten_optimizer(prefix: str, tensors: dict[str, Any], param_groups: list) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": param_groups}


def _as_tensor(value):
    import torch

    return torch.tensor(value)
