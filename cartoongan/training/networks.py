"""The CartoonGAN networks, top to bottom like the paper.

Chen et al., "CartoonGAN: Generative Adversarial Networks for Photo
Cartoonization", CVPR 2018. Three generators share one builder:

- ``cartoongan``: the paper. InstanceNorm, residual blocks without a final ReLU,
  plain transposed-convolution upsampling.
- ``cartoongan-bn``: our design. BatchNorm (folds into the convolutions at
  export, which TensorRT FP16 likes; also keeps tiled inference exact because
  nothing depends on whole-frame statistics), residual block
  conv-BN-ReLU-conv-BN, add, *then* ReLU, and a fixed binomial blur after every
  transposed convolution so its uneven overlap cannot print a checkerboard.
- ``cartoongan-lite``: ``cartoongan-bn`` at half the width and half the depth,
  with depthwise-separable 3x3 convolutions and 5x5 edge convolutions: about
  29x fewer multiply-accumulates, for CPUs and edge GPUs.

Every generator takes any height and width: the input is padded to a multiple of
4 (the two stride-2 stages) and the output cropped back, so sizes always match.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cartoongan.errors import InvalidInput


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    norm: str  # "instance" (paper) or "batch" (our design)
    channels: tuple[int, int, int] = (64, 128, 256)  # full, 1/2 and 1/4 resolution
    res_blocks: int = 8
    edge_kernel: int = 7  # the flat input convolution and the output convolution
    relu_after_add: bool = False
    blur_upsample: bool = False
    separable: bool = False  # depthwise-separable 3x3 convolutions

    # Inputs are padded to a multiple of this, and never smaller than `min_side`
    # (at 1/4 resolution a reflect-padded 3x3 convolution needs 2 pixels).
    multiple: int = 4
    min_side: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


ARCHITECTURES: dict[str, GeneratorSpec] = {
    spec.name: spec
    for spec in (
        GeneratorSpec("cartoongan", norm="instance"),
        GeneratorSpec("cartoongan-bn", norm="batch", relu_after_add=True, blur_upsample=True),
        GeneratorSpec(
            "cartoongan-lite",
            norm="batch",
            channels=(32, 64, 128),
            res_blocks=4,
            edge_kernel=5,
            relu_after_add=True,
            blur_upsample=True,
            separable=True,
        ),
    )
}


def get_spec(arch: str) -> GeneratorSpec:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise InvalidInput(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}") from None


# --------------------------------------------------------------------------- building blocks


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise InvalidInput(f"unknown norm {kind!r}; expected 'instance' or 'batch'")


def conv3x3(c_in: int, c_out: int, stride: int = 1, separable: bool = False) -> nn.Module:
    """3x3 convolution with reflect padding; depthwise + pointwise when `separable`."""
    if not separable:
        return nn.Conv2d(c_in, c_out, 3, stride, padding=1, padding_mode="reflect")
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, padding=1, padding_mode="reflect", groups=c_in),
        nn.Conv2d(c_in, c_out, 1),
    )


class Blur(nn.Module):
    """Fixed 3x3 binomial low-pass filter, one per channel (no learned weights)."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, groups=x.shape[1])


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-conv-norm, add the skip; the design adds a final ReLU."""

    def __init__(self, channels: int, spec: GeneratorSpec):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels, separable=spec.separable),
            norm_layer(spec.norm, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, separable=spec.separable),
            norm_layer(spec.norm, channels),
        )
        self.relu_after_add = spec.relu_after_add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.body(x)
        return F.relu(y) if self.relu_after_add else y


def down_block(c_in: int, c_out: int, spec: GeneratorSpec) -> nn.Sequential:
    """Paper: k3 n{c_out} s2, k3 n{c_out} s1, norm, ReLU."""
    return nn.Sequential(
        conv3x3(c_in, c_out, stride=2, separable=spec.separable),
        conv3x3(c_out, c_out, separable=spec.separable),
        norm_layer(spec.norm, c_out),
        nn.ReLU(inplace=True),
    )


def up_block(c_in: int, c_out: int, spec: GeneratorSpec) -> nn.Sequential:
    """Paper: k3 n{c_out} s1/2 (transposed), k3 n{c_out} s1, norm, ReLU; the design blurs after upsampling."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)]
    if spec.blur_upsample:
        layers.append(Blur(c_out))
    layers += [
        conv3x3(c_out, c_out, separable=spec.separable),
        norm_layer(spec.norm, c_out),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- generator


class Generator(nn.Module):
    """Photo in, cartoon out; both RGB in [-1, 1], NCHW, any H and W."""

    def __init__(self, spec: GeneratorSpec):
        super().__init__()
        self.spec = spec
        c1, c2, c4 = spec.channels
        k = spec.edge_kernel
        self.flat = nn.Sequential(
            nn.Conv2d(3, c1, k, padding=k // 2, padding_mode="reflect"),
            norm_layer(spec.norm, c1),
            nn.ReLU(inplace=True),
        )
        self.down = nn.Sequential(down_block(c1, c2, spec), down_block(c2, c4, spec))
        self.res = nn.Sequential(*[ResidualBlock(c4, spec) for _ in range(spec.res_blocks)])
        self.up = nn.Sequential(up_block(c4, c2, spec), up_block(c2, c1, spec))
        self.out = nn.Sequential(nn.Conv2d(c1, 3, k, padding=k // 2, padding_mode="reflect"), nn.Tanh())

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        """The network itself; H and W must already be multiples of `spec.multiple`."""
        return self.out(self.up(self.res(self.down(self.flat(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.spec.multiple
        pad_h = max(self.spec.min_side, -(-h // m) * m) - h
        pad_w = max(self.spec.min_side, -(-w // m) * m) - w
        if pad_h or pad_w:
            # replicate, not reflect: reflect cannot pad more than the image has
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.forward_aligned(x)[..., :h, :w]


def build_generator(arch: str) -> Generator:
    return Generator(get_spec(arch))


# --------------------------------------------------------------------------- discriminator


class PatchDiscriminator(nn.Module):
    """The paper's discriminator: one real/fake score per patch of a 1/4-resolution map.

    k3n32s1, LReLU; k3n64s2, LReLU, k3n128s1, norm, LReLU; k3n128s2, LReLU,
    k3n256s1, norm, LReLU; k3n256s1, norm, LReLU; k3n1s1. LeakyReLU slope 0.2.
    """

    def __init__(self, base: int = 32, norm: str = "instance", spectral_norm: bool = False):
        super().__init__()

        def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 3, stride, padding=1)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        def normed(channels: int) -> list[nn.Module]:
            return [] if norm == "none" else [norm_layer(norm, channels)]

        def act() -> nn.Module:
            return nn.LeakyReLU(0.2, inplace=True)

        b = base
        self.net = nn.Sequential(
            conv(3, b), act(),
            conv(b, 2 * b, 2), act(), conv(2 * b, 4 * b), *normed(4 * b), act(),
            conv(4 * b, 4 * b, 2), act(), conv(4 * b, 8 * b), *normed(8 * b), act(),
            conv(8 * b, 8 * b), *normed(8 * b), act(),
            conv(8 * b, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --------------------------------------------------------------------------- accounting


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on a 1x3xHxW input (convolutions and blurs).

    Shapes are traced on the `meta` device, so even 1080p costs no compute.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, Blur):
            total += output.numel() * 9
            return
        kh, kw = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a kernel
            total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        else:
            total += output.numel() * (module.in_channels // module.groups) * kh * kw

    meta_model = copy.deepcopy(model).to("meta").eval()
    for m in meta_model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | Blur):
            m.register_forward_hook(hook)
    meta_model(torch.empty(1, 3, height, width, device="meta"))
    return total
