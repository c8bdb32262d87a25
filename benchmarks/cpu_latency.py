"""CPU latency of one generator: torch eager fp32 vs the SDK's CPU configurations.

    python benchmarks/cpu_latency.py --checkpoint runs/x/checkpoints/last.safetensors
    python benchmarks/cpu_latency.py --arch cartoongan-lite          # random weights: speed only

Prints p50/p90 latency per configuration at one resolution (batch 1) in one
process, and the speed-up of each over torch eager fp32. INT8 is calibrated on
--calibration photos and its PSNR against ONNX Runtime fp32 is printed beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def percentiles(fn, warmup: int, iters: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50)) * 1e3, float(np.percentile(times, 90)) * 1e3


def profile_op_types(path, x, runs: int = 3, top: int = 8) -> str:
    """Share of ONNX Runtime kernel time per operator type (where the time goes)."""
    import json
    import os
    from collections import Counter

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {"image": x})
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    by_op = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values()) or 1
    return ", ".join(f"{op} {100 * t / total:.0f}%" for op, t in by_op.most_common(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a training checkpoint")
    source.add_argument("--arch", help="random weights of this architecture")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--calibration", default="../shared/data/photos", help="photos for INT8 calibration")
    parser.add_argument("--profile", action="store_true", help="also print ONNX Runtime time per operator type")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from cartoongan.export.onnx import export_onnx, load_generator, psnr, quantize_int8
    from cartoongan.training import checkpoint
    from cartoongan.training.networks import build_generator

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.checkpoint
        if ckpt is None:
            torch.manual_seed(0)
            g = build_generator(args.arch)
            ckpt = tmp / "random.safetensors"
            state = {f"generator.{k}": v for k, v in g.state_dict().items()}
            checkpoint.save(ckpt, state, {"arch": args.arch, "config": {}, "step": 0})
        generator, _ = load_generator(ckpt)
        fp32 = export_onnx(ckpt, tmp / "fp32.onnx")
        int8, int8_psnr = quantize_int8(fp32, tmp / "int8.onnx", args.calibration, size=256, limit=16)

        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, args.size, args.size)).astype(np.float32)
        xt = torch.from_numpy(x)
        rows = []

        def torch_eager():
            with torch.inference_mode():
                generator(xt)

        rows.append(("torch eager fp32", *percentiles(torch_eager, args.warmup, args.iters), ""))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        reference = None
        for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8", int8)):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            out = session.run(None, {"image": x})[0]
            reference = out if reference is None else reference
            note = f"PSNR {psnr(out, reference):.1f} dB here, {int8_psnr:.1f} dB on photos" if "int8" in name else ""
            rows.append((name, *percentiles(lambda: session.run(None, {"image": x}), args.warmup, args.iters), note))
        try:
            import openvino as ov

            compiled = ov.Core().compile_model(str(fp32), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
            request = compiled.create_infer_request()
            out = request.infer({0: x})[compiled.output(0)]
            note = f"max |diff| vs ORT {np.abs(out - reference).max():.1e}"
            rows.append(("openvino fp32", *percentiles(lambda: request.infer({0: x}), args.warmup, args.iters), note))
        except ImportError:
            rows.append(("openvino fp32", float("nan"), float("nan"), "not installed (pip install openvino)"))

        profiles = {}
        if args.profile:
            profiles = {"fp32": profile_op_types(fp32, x), "int8": profile_op_types(int8, x)}

    base = rows[0][1]
    print(f"{generator.spec.name}, 1x3x{args.size}x{args.size}, {args.iters} timed runs after {args.warmup} warm-up, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}")
    print(f"{'configuration':<20}{'p50 ms':>10}{'p90 ms':>10}{'speed-up':>10}  notes")
    for name, p50, p90, note in rows:
        print(f"{name:<20}{p50:>10.1f}{p90:>10.1f}{base / p50:>9.2f}x  {note}")
    for precision, summary in profiles.items():
        print(f"onnxruntime {precision} time by operator: {summary}")


if __name__ == "__main__":
    main()
