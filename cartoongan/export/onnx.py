"""Checkpoint -> ONNX, one path-to-path step at a time.

    export_onnx("runs/x/checkpoints/last.safetensors", "model.onnx")   # fp32, BN folded, parity-checked
    convert_fp16("model.onnx", "model.fp16.onnx")                      # fp16 inside, float32 in and out
    quantize_int8("model.onnx", "model.int8.onnx", "photos/")          # static QDQ, per-channel weights

The graph takes and returns float32 NCHW RGB in [-1, 1] with dynamic batch,
height and width (height and width multiples of 4, at least 8); the SDK pads
and crops around it. Everything the SDK needs to know travels in
`metadata_props` (see `MODEL_METADATA`).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np

from cartoongan import __version__
from cartoongan._deps import require
from cartoongan._io import atomic_path
from cartoongan.errors import CartoonGANError, InvalidInput

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "image", "cartoon"


class ExportError(CartoonGANError):
    """The exported model failed a check (ONNX checker, parity with torch)."""


# --------------------------------------------------------------------------- torch side


def load_generator(checkpoint_path: str | Path):
    """(generator in eval mode, checkpoint metadata) from a training checkpoint."""
    from cartoongan.training import checkpoint
    from cartoongan.training.networks import build_generator

    tensors, meta = checkpoint.load(checkpoint_path)
    arch = meta.get("arch") or meta.get("config", {}).get("arch")
    generator = build_generator(arch)
    state = {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    if not state:
        raise InvalidInput(f"{checkpoint_path}: holds no generator.* tensors")
    generator.load_state_dict(state)
    return generator.eval(), meta


def fold_batchnorm(generator):
    """An eval-mode copy in which every BatchNorm is folded into the convolution before it."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(generator).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(1, len(module)):
            if not isinstance(module[i], nn.BatchNorm2d):
                continue
            previous = module[i - 1]
            owner, index = (previous, len(previous) - 1) if isinstance(previous, nn.Sequential) else (module, i - 1)
            conv = owner[index]
            if isinstance(conv, nn.Conv2d):
                with torch.no_grad():
                    owner[index] = fuse_conv_bn_eval(conv, module[i])
                module[i] = nn.Identity()
    return folded


def _aligned(generator):
    from torch import nn

    class Aligned(nn.Module):
        """The generator without its pad/crop: H and W are multiples of 4 here."""

        def __init__(self, g: nn.Module):
            super().__init__()
            self.g = g

        def forward(self, image):
            return self.g.forward_aligned(image)

    return Aligned(generator).eval()


# --------------------------------------------------------------------------- helpers


def _atomic_save(model, path: Path) -> None:
    onnx = require("onnx", "ONNX export")
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))


def _set_metadata(model, values: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, str(value)


def read_metadata(path: str | Path) -> dict[str, str]:
    onnx = require("onnx", "reading ONNX metadata")
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _session(path_or_bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [-1, 1], on the 0-255 scale."""
    mse = float(np.mean(((a.astype(np.float64) - b.astype(np.float64)) * 127.5) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# --------------------------------------------------------------------------- steps


def export_onnx(checkpoint_path: str | Path, output: str | Path, atol: float = 1e-4, opset: int = OPSET) -> Path:
    """Export the checkpoint's generator to fp32 ONNX (BatchNorm folded), check it, save atomically."""
    torch = require("torch", "ONNX export")
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export (torch's exporter)")
    from torch.export import Dim

    output = Path(output)
    generator, meta = load_generator(checkpoint_path)
    spec = generator.spec
    module = _aligned(fold_batchnorm(generator))
    example = torch.zeros(1, 3, 64, 64)
    h, w = Dim("h", min=spec.min_side // 4, max=4096), Dim("w", min=spec.min_side // 4, max=4096)
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"image": {0: Dim("batch", min=1, max=1024), 2: 4 * h, 3: 4 * w}},
        opset_version=opset,
        verbose=False,
    )
    model = program.model_proto
    config = meta.get("config", {})
    _set_metadata(
        model,
        {
            "cartoongan.arch": spec.name,
            "cartoongan.spec": json.dumps(spec.to_dict()),
            "cartoongan.input_range": "[-1, 1]",
            "cartoongan.channel_order": "RGB",
            "cartoongan.layout": "NCHW",
            "cartoongan.spatial_multiple": spec.multiple,
            "cartoongan.min_side": spec.min_side,
            "cartoongan.precision": "fp32",
            "cartoongan.training_config_hash": meta.get("config_hash", ""),
            "cartoongan.training_step": meta.get("step", ""),
            "cartoongan.crop_size": config.get("crop_size", ""),
            "cartoongan.package_version": __version__,
        },
    )
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {exc}") from None

    # Parity: the folded ONNX graph against the original (unfolded) torch generator.
    rng = np.random.default_rng(0)
    session = _session(model.SerializeToString())
    worst = 0.0
    for shape in ((1, 3, 64, 96), (2, 3, 52, 36)):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            expected = generator.forward_aligned(torch.from_numpy(x)).numpy()
        got = session.run(None, {INPUT_NAME: x})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol:
        raise ExportError(f"ONNX Runtime and torch differ by up to {worst:.2e} (allowed {atol:.0e}); not saved")
    _set_metadata(model, {"cartoongan.parity_max_abs_diff": f"{worst:.3e}"})
    _atomic_save(model, output)
    return output


def convert_fp16(source: str | Path, output: str | Path, keep_io_types: bool = True) -> Path:
    """float16 weights and activations; float32 input and output unless `keep_io_types=False`."""
    onnx = require("onnx", "FP16 conversion")
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=keep_io_types)
    OnnxModel(model).topological_sort()  # the converter appends its input Casts after their users
    _set_metadata(model, {"cartoongan.precision": "fp16"})
    onnx.checker.check_model(model)
    _atomic_save(model, Path(output))
    return Path(output)


class _ImageReader:
    """Calibration batches: photos resized and centre-cropped to size x size, [-1, 1] NCHW RGB."""

    def __init__(self, folder: str | Path, size: int, limit: int):
        from cartoongan.training.data import center_crop, fit_for_crop, list_images, read_rgb

        images = []
        for path in list_images(folder)[:limit]:
            rgb = read_rgb(path)
            if rgb is not None:
                images.append(center_crop(fit_for_crop(rgb, size, size), size))
        if not images:
            raise InvalidInput(f"calibration folder {folder}: no readable images")
        self.batches = [(img.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1) for img in images]
        self._iter = iter(self.batches)

    def get_next(self):
        batch = next(self._iter, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self):
        self._iter = iter(self.batches)


def quantize_int8(
    source: str | Path, output: str | Path, calibration: str | Path, size: int = 256, limit: int = 32
) -> tuple[Path, float]:
    """Static QDQ INT8 (per-channel weights, u8 activations) calibrated on photos; returns (path, PSNR vs fp32).

    `reduce_range=True` keeps 7-bit weights: CPUs without VNNI saturate in their
    u8 x s8 multiply otherwise (measured here: about 20 dB PSNR without it).
    """
    onnx = require("onnx", "INT8 quantization")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader = _ImageReader(calibration, size, limit)

    class Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "int8.onnx"
        quantize_static(
            str(source),
            str(raw),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        fp32, int8 = _session(source), _session(raw)
        reader.rewind()
        scores = []
        for batch in reader.batches:
            scores.append(psnr(int8.run(None, {INPUT_NAME: batch})[0], fp32.run(None, {INPUT_NAME: batch})[0]))
        value = float(np.mean(scores))
        model = onnx.load(str(raw))
        _set_metadata(model, {"cartoongan.precision": "int8", "cartoongan.int8_psnr_db": f"{value:.2f}"})
        _atomic_save(model, output)
    return output, value
