"""Turn a training checkpoint into the default model shipped in the package.

    python tools/ship_model.py runs/default-lite/checkpoints/last.safetensors --calibration ../shared/data/photos

Writes, into cartoongan/sdk/models/: default.onnx (fp32, BatchNorm folded,
parity-checked), default.int8.onnx (static QDQ, for CPUs) and default.safetensors
(the generator's weights alone, for fine-tuning and the PyTorch benchmark rows),
each with its JSON description.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cartoongan.export.onnx import export_onnx, quantize_int8, read_metadata
from cartoongan.training import checkpoint

MODELS = Path(__file__).resolve().parents[1] / "cartoongan" / "sdk" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--calibration", required=True, help="photos for INT8 calibration")
    parser.add_argument("--out", default=str(MODELS))
    args = parser.parse_args()
    out = Path(args.out)

    tensors, meta = checkpoint.load(args.checkpoint)
    generator = {k: v for k, v in tensors.items() if k.startswith("generator.")}
    keep = ("arch", "config", "config_hash", "phase", "epoch", "step", "package_version")
    checkpoint.save(out / "default.safetensors", generator, {k: meta[k] for k in keep if k in meta})

    fp32 = export_onnx(args.checkpoint, out / "default.onnx")
    _, value = quantize_int8(fp32, out / "default.int8.onnx", args.calibration, size=256, limit=32)
    print(f"{fp32}: {read_metadata(fp32)}")
    print(f"default.int8.onnx: {value:.2f} dB PSNR against fp32 on the calibration photos")


if __name__ == "__main__":
    main()
