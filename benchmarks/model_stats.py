"""Parameter counts and multiply-accumulates (GMACs) of every network.

    python benchmarks/model_stats.py

MACs are counted per image from the convolution shapes (no timing involved).
"""

from __future__ import annotations

from cartoongan.training.networks import (
    ARCHITECTURES,
    PatchDiscriminator,
    build_generator,
    count_macs,
    count_parameters,
)

SIZES = {"256x256": (256, 256), "512x512": (512, 512), "720p": (720, 1280), "1080p": (1080, 1920)}


def main() -> None:
    header = f"{'network':<22}{'params (M)':>12}" + "".join(f"{'GMACs ' + s:>16}" for s in SIZES) + f"{'vs bn':>8}"
    print(header)
    print("-" * len(header))
    models = {name: build_generator(name) for name in ARCHITECTURES}
    models["discriminator"] = PatchDiscriminator()
    reference = count_macs(models["cartoongan-bn"], 256, 256)
    for name, model in models.items():
        macs = [count_macs(model, h, w) for h, w in SIZES.values()]
        ratio = f"{reference / macs[0]:.1f}x" if name.startswith("cartoongan") else ""
        gmacs = "".join(f"{m / 1e9:>16.2f}" for m in macs)
        print(f"{name:<22}{count_parameters(model) / 1e6:>12.3f}{gmacs}{ratio:>8}")
    print("\n'vs bn': how many times fewer MACs than cartoongan-bn at 256x256.")


if __name__ == "__main__":
    main()
