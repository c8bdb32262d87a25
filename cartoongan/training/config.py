"""Training configuration: one frozen dataclass, loadable from YAML, overridable from the CLI.

The resolved config is saved as `config.yaml` in the run directory and inside
every checkpoint, so a run can always be reproduced and resumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cartoongan._deps import require
from cartoongan._io import atomic_write_bytes
from cartoongan.errors import InvalidInput


@dataclass(frozen=True)
class TrainConfig:
    # data
    photos: str = ""
    cartoons: str = ""
    crop_size: int = 256
    short_side: int = 0  # resize every image so its short side is this (0: only small ones go up to crop_size)
    num_workers: int = 2
    holdout_fraction: float = 0.0  # photos kept out of training (stable split by file name), for samples and evaluation

    # networks and losses
    arch: str = "cartoongan-bn"
    init_from: str = ""  # generator weights to start from (a checkpoint, or the shipped default.safetensors)
    content_backbone: str = "auto"  # "vgg16" (design), "vgg19" (paper) or "auto": vgg16 if its weights are found
    vgg_weights: str = ""  # a torchvision .pth/.safetensors or Keras .h5 file; "" searches the usual places
    content_weight: float = 10.0
    tv_weight: float = 0.0  # L1 total variation of the output (flat regions, White-box Cartoonization); 0: the paper
    line_weight: float = 0.0  # ink the photo's contours dark in the output (see PhotoLines); 0: the paper
    color_weight: float = 0.0  # keep the photo's colours in 8x8 block means (against casts and darkening); 0: the paper
    line_blur: int = 7  # median blur before Canny: larger ignores more texture
    line_canny_low: int = 60
    line_canny_high: int = 150
    line_width: int = 1  # ink line width in pixels at training scale
    gan_loss: str = "lsgan"  # "lsgan" (the paper author's code) or "bce"
    d_channels: int = 32  # the paper's discriminator width; 16 makes it 4x cheaper for CPU runs
    d_norm: str = "instance"
    d_spectral_norm: bool = False

    # the paper's edge smoothing of cartoon images
    canny_low: int = 100
    canny_high: int = 200
    edge_dilate: int = 5
    edge_blur: int = 5

    # schedule and optimisation
    init_epochs: int = 10  # content loss only
    adv_epochs: int = 100
    batch_size: int = 16
    init_lr: float = 2e-4
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    amp: bool = True  # mixed precision, CUDA only
    seed: int = 0

    # bookkeeping
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    keep_checkpoints: int = 5  # numbered checkpoints kept besides "last"; 0 keeps all
    sample_count: int = 4

    extra: dict = field(default_factory=dict)  # free-form notes carried with the run

    def replace(self, **changes: Any) -> "TrainConfig":
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def hash(self) -> str:
        """Short, stable fingerprint of everything that shapes the model."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def validate(self) -> "TrainConfig":
        from cartoongan.training.networks import get_spec

        get_spec(self.arch)
        checks = [
            (self.content_backbone in ("auto", "vgg16", "vgg19"), "content_backbone must be auto, vgg16 or vgg19"),
            (self.gan_loss in ("lsgan", "bce"), "gan_loss must be lsgan or bce"),
            (self.d_norm in ("instance", "batch", "none"), "d_norm must be instance, batch or none"),
            (self.crop_size >= 32 and self.crop_size % 4 == 0, "crop_size must be a multiple of 4, at least 32"),
            (self.d_channels >= 4, "d_channels must be at least 4"),
            (
                min(self.content_weight, self.tv_weight, self.line_weight, self.color_weight) >= 0,
                "content_weight, tv_weight, line_weight and color_weight must be >= 0",
            ),
            (0.0 <= self.holdout_fraction < 1.0, "holdout_fraction must be in [0, 1)"),
            (self.batch_size >= 2, "batch_size must be at least 2 (BatchNorm needs a batch)"),
            (self.init_epochs >= 0 and self.adv_epochs >= 0, "epochs must be >= 0"),
            (min(self.log_every, self.sample_every, self.checkpoint_every) >= 1, "*_every must be >= 1"),
            (self.edge_dilate % 2 == 1 and self.edge_blur % 2 == 1, "edge_dilate and edge_blur must be odd"),
            (self.line_blur % 2 == 1 and self.line_blur >= 3, "line_blur must be odd and at least 3"),
            (1 <= self.line_width <= 9, "line_width must be 1 to 9 pixels"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInput(f"invalid training config: {message}")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPES = typing.get_type_hints(TrainConfig)


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind in (int, float, str):
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return kind(value)
        if name == "betas":
            pair = tuple(float(v) for v in value)
            if len(pair) != 2:
                raise ValueError(value)
            return pair
        if name == "extra" and isinstance(value, dict):
            return value
    except (TypeError, ValueError):
        pass
    raise InvalidInput(f"config field {name!r}: cannot use {value!r}, expected {getattr(kind, '__name__', kind)}")


def from_dict(values: dict[str, Any]) -> TrainConfig:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown config fields {unknown}; known fields: {sorted(_FIELDS)}")
    return TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})


def load_yaml(path: str | Path) -> TrainConfig:
    yaml = require("yaml", "reading YAML configs")
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise InvalidInput(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise InvalidInput(f"config file {path}: expected a mapping of field: value, got {type(values).__name__}")
    return from_dict(values)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["batch_size=8", "betas=[0.5, 0.99]"]` -> {"batch_size": 8, "betas": [0.5, 0.99]} (values read as YAML)."""
    yaml = require("yaml", "reading config overrides")
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"override {pair!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def dump_yaml(config: TrainConfig, path: str | Path) -> None:
    yaml = require("yaml", "writing YAML configs")
    atomic_write_bytes(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
