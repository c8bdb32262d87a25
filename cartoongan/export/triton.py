"""An NVIDIA Triton Inference Server model repository for an exported model.

    model_repository/
      cartoongan/
        config.pbtxt
        1/model.onnx   (or model.plan for a TensorRT engine)

Input and output names and types are read from the model itself; the batch
dimension is Triton's (max_batch_size, dynamic batching) and H and W are -1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cartoongan._io import atomic_path, atomic_write_bytes
from cartoongan.errors import InvalidInput

_ONNX_TO_TRITON = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(uint8)": "TYPE_UINT8"}


def _onnx_io(model: Path) -> tuple[list[tuple[str, str, list]], list[tuple[str, str, list]]]:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInput(f"{model}: cannot be loaded as an ONNX model ({exc})") from None

    def describe(args):
        out = []
        for arg in args:
            if arg.type not in _ONNX_TO_TRITON or len(arg.shape) != 4:
                raise InvalidInput(f"{model}: {arg.name} is {arg.type} {arg.shape}; expected a float NCHW tensor")
            dims = [d if isinstance(d, int) else -1 for d in arg.shape[1:]]  # drop the batch dimension
            out.append((arg.name, _ONNX_TO_TRITON[arg.type], dims))
        return out

    return describe(session.get_inputs()), describe(session.get_outputs())


def engine_io_from_sidecar(engine: Path) -> tuple[list, list]:
    """Input/output descriptions of a TensorRT engine, from the sidecar `cartoongan export engine` wrote."""
    from cartoongan.export.engine import read_sidecar

    sidecar = read_sidecar(engine)
    if sidecar is None or "input_name" not in sidecar:
        raise InvalidInput(f"{engine}: no readable {engine.name}.json sidecar; build it with `cartoongan export engine`")
    # the engine takes and returns float32 (FP16 engines keep float32 I/O), channels first, any H and W
    return [(sidecar["input_name"], "TYPE_FP32", [3, -1, -1])], [(sidecar["output_name"], "TYPE_FP32", [3, -1, -1])]


def config_pbtxt(name: str, platform: str, inputs, outputs, max_batch_size: int, preferred=(1, 4)) -> str:
    def block(kind: str, items) -> str:
        entries = ",\n".join(
            f'  {{\n    name: "{n}"\n    data_type: {t}\n    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}'
            for n, t, dims in items
        )
        return f"{kind} [\n{entries}\n]\n"

    sizes = ", ".join(str(s) for s in preferred if s <= max_batch_size)
    return (
        f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch_size}\n'
        + block("input", inputs)
        + block("output", outputs)
        + f"dynamic_batching {{\n  preferred_batch_size: [ {sizes} ]\n  max_queue_delay_microseconds: 2000\n}}\n"
        + "instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]\n"
    )


def export_triton(
    model: str | Path,
    repository: str | Path,
    name: str = "cartoongan",
    max_batch_size: int = 8,
    engine_io: tuple | None = None,
) -> Path:
    """Copy `model` (.onnx, or a TensorRT .plan with `engine_io=(inputs, outputs)`) into a Triton repository."""
    model, repository = Path(model), Path(repository)
    if not model.is_file():
        raise InvalidInput(f"model {model} does not exist")
    if max_batch_size < 1:
        raise InvalidInput(f"max_batch_size must be at least 1, got {max_batch_size}")
    if model.suffix == ".onnx":
        platform, filename = "onnxruntime_onnx", "model.onnx"
        inputs, outputs = _onnx_io(model)
    elif model.suffix in (".plan", ".engine"):
        if engine_io is None:
            raise InvalidInput("a TensorRT engine needs its input/output description (engine_io)")
        platform, filename = "tensorrt_plan", "model.plan"
        inputs, outputs = engine_io
    else:
        raise InvalidInput(f"{model}: expected an .onnx model or a TensorRT .plan engine")
    folder = repository / name
    with atomic_path(folder / "1" / filename) as tmp:
        shutil.copyfile(model, tmp)
    atomic_write_bytes(folder / "config.pbtxt", config_pbtxt(name, platform, inputs, outputs, max_batch_size).encode())
    return folder
