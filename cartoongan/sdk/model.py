"""What the SDK knows about an ONNX generator: read from its metadata, checked against its graph."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cartoongan.errors import ModelError

DEFAULT_MODEL = "default.onnx"


def default_model_path() -> Path:
    """The generator shipped inside the package (package data, no download)."""
    path = Path(str(resources.files("cartoongan.sdk") / "models" / DEFAULT_MODEL))
    if not path.is_file():
        raise ModelError(
            f"this installation of cartoongan has no default model (expected {path}); pass model=PATH "
            "to an exported .onnx file (`cartoongan export onnx CHECKPOINT -o model.onnx`)"
        )
    return path


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    arch: str
    precision: str
    input_name: str
    output_name: str
    spatial_multiple: int = 4
    min_side: int = 8
    channel_order: str = "RGB"
    input_range: tuple[float, float] = (-1.0, 1.0)

    @classmethod
    def from_session(cls, path: Path, session) -> "ModelInfo":
        """Check that the graph is an image-to-image generator and read its metadata."""
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{path}: expected a model with 1 input and 1 output (image -> cartoon), "
                f"got {len(inputs)} inputs and {len(outputs)} outputs"
            )
        for kind, arg in (("input", inputs[0]), ("output", outputs[0])):
            shape = arg.shape
            if arg.type not in ("tensor(float)", "tensor(float16)") or len(shape) != 4 or shape[1] not in (3, "3"):
                raise ModelError(
                    f"{path}: expected a float Nx3xHxW {kind}, got {arg.type} with shape {shape} "
                    "(is this a cartoongan model?)"
                )
        meta = session.get_modelmeta().custom_metadata_map
        try:
            low, high = json.loads(meta.get("cartoongan.input_range", "[-1, 1]"))
            return cls(
                path=path,
                arch=meta.get("cartoongan.arch", "unknown"),
                precision=meta.get("cartoongan.precision", "fp32"),
                input_name=inputs[0].name,
                output_name=outputs[0].name,
                spatial_multiple=int(meta.get("cartoongan.spatial_multiple", 4)),
                min_side=int(meta.get("cartoongan.min_side", 8)),
                channel_order=meta.get("cartoongan.channel_order", "RGB").upper(),
                input_range=(float(low), float(high)),
            )
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path}: unreadable cartoongan metadata ({exc})") from None
