"""Seconds per training step for each generator with each content backbone.

    python benchmarks/train_step.py [--batch 16] [--crop 256] [--repeats 2]

Times one init-phase step (content loss only) and one adversarial step
(discriminator + generator update) on synthetic batches, after one warm-up
step by default, on whatever device torch picks (CPU here). VGG weights are random: the
cost is the same as with real ones. Data loading is not included.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from contextlib import nullcontext
from types import SimpleNamespace

import torch

from cartoongan.training.config import TrainConfig
from cartoongan.training.networks import ARCHITECTURES, PatchDiscriminator, build_generator
from cartoongan.training.trainer import Trainer
from cartoongan.training.vgg import build_vgg


def make_trainer(arch: str, backbone: str, device: torch.device, d_channels: int = 32) -> Trainer:
    """A Trainer without data: only what `_init_step` / `_adversarial_step` use."""
    trainer = Trainer.__new__(Trainer)
    trainer.config = TrainConfig(arch=arch, content_backbone=backbone, vgg_weights="random", d_channels=d_channels)
    trainer.device = device
    trainer.dist = SimpleNamespace(world=1, enabled=False)
    trainer.vgg = build_vgg(backbone, random_init=True).to(device)
    trainer.generator = build_generator(arch).to(device)
    trainer.discriminator = PatchDiscriminator(d_channels).to(device)
    trainer.progress = SimpleNamespace()
    trainer.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    return trainer


def time_step(step, repeats: int, warmup: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--backbones", default="vgg16,vgg19")
    parser.add_argument("--d-channels", type=int, default=32, help="discriminator width (the paper: 32)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, batch {args.batch}, crop {args.crop}x{args.crop}, D width {args.d_channels}, "
          f"{args.warmup} warm-up step(s), median of {args.repeats}")
    rows = []
    for arch in args.archs.split(","):
        for backbone in args.backbones.split(","):
            torch.manual_seed(0)
            trainer = make_trainer(arch, backbone, device, args.d_channels)
            x = lambda: torch.rand(args.batch, 3, args.crop, args.crop, device=device) * 2 - 1  # noqa: E731
            photo, cartoon, smoothed = x(), x(), x()
            trainer._start_phase("init")
            init_step = lambda: trainer._init_step(photo)  # noqa: E731
            init = time_step(init_step, args.repeats, args.warmup, device)
            trainer._start_phase("adversarial")
            adversarial = lambda: trainer._adversarial_step(photo, cartoon, smoothed)  # noqa: E731
            adv = time_step(adversarial, args.repeats, args.warmup, device)
            rows.append((arch, backbone, init, adv))
            print(f"  {arch:<16} {backbone:<6} init {init:8.2f} s/step   adversarial {adv:8.2f} s/step", flush=True)

    reference = {(a, b): adv for a, b, _, adv in rows}.get(("cartoongan-bn", "vgg19"))
    print(f"\n{'generator':<16} {'backbone':<9} {'init s/step':>12} {'adv s/step':>11} {'adv vs bn+vgg19':>16}")
    for arch, backbone, init, adv in rows:
        ratio = f"{reference / adv:.2f}x" if reference else "-"
        print(f"{arch:<16} {backbone:<9} {init:>12.2f} {adv:>11.2f} {ratio:>16}")


if __name__ == "__main__":
    main()
