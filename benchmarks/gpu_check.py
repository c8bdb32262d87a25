"""Every GPU check in one run: the GPU tests, then a latency table (backends x fp32/fp16 x 256/512/720p/1080p).

    python benchmarks/gpu_check.py [--model model.onnx] [--checkpoint gen.safetensors] [--json gpu.json]

Made to finish in under 8 minutes on one GPU: each row has a time budget. Works
without TensorRT (it says so; the ONNX Runtime CUDA and PyTorch rows still run)
and without onnxruntime-gpu (the PyTorch CUDA rows run). Speed-ups are against
PyTorch eager fp32 on the same GPU: what users of the PyTorch generator run today.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="fp32 .onnx (default: the model shipped in the package)")
    parser.add_argument("--checkpoint", help="generator weights for the PyTorch rows (default: beside the model)")
    parser.add_argument("--sizes", default="256,512,720p,1080p")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="time budget per row")
    parser.add_argument("--json", default="gpu_check.json")
    parser.add_argument("--markdown", default="gpu_check.md")
    args = parser.parse_args()
    start = time.monotonic()

    from cartoongan import bench

    env = bench.environment()
    print(f"GPU: {env['gpu'] or 'none found by nvidia-smi'}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()))
    if find_spec("tensorrt") is None:
        print("TensorRT is not installed: the native TensorRT rows are skipped (pip install \"cartoongan[tensorrt]\")")

    print("\n== GPU tests (pytest -m gpu)", flush=True)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", str(ROOT / "tests")], cwd=ROOT)

    print("\n== latency", flush=True)
    report = bench.run_benchmark(
        model=Path(args.model) if args.model else None,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        backends=["tensorrt", "onnxruntime-tensorrt", "onnxruntime-cuda", "torch"],
        precisions=["fp32", "fp16"],
        sizes=bench.parse_sizes(args.sizes),
        batches=[1],
        warmup=3,
        iters=30,
        max_seconds=args.max_seconds,
        progress=lambda message: print(f"  {message}", flush=True),
    )
    bench.save(report, args.json, args.markdown, None)
    print(bench.markdown(report))
    print("== summary")
    print(f"GPU tests: {'passed' if tests.returncode == 0 else f'FAILED (exit {tests.returncode})'}")
    for size in report.settings["sizes"]:
        ratios = bench.speedups(report, size, baseline="torch-cuda")
        if ratios:
            print(f"{size}: speed-up over torch-cuda fp32: " + ", ".join(f"{n} {r:.2f}x" for n, r in ratios))
    print(f"total {time.monotonic() - start:.0f} s; rows in {args.json} and {args.markdown}")
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
