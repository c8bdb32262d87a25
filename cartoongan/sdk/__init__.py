"""Runtime SDK: runs exported models with ONNX Runtime (or OpenVINO); never imports torch."""

from cartoongan.sdk.backends import available_backends
from cartoongan.sdk.cartoonizer import Cartoonizer

__all__ = ["Cartoonizer", "available_backends"]
