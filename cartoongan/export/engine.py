"""ONNX -> TensorRT engine, with a JSON sidecar that says where and how it was built.

    build_engine("model.onnx", "model.plan", "fp16", Profile.parse("1x3x64x64", "1x3x720x1280", "4x3x1080x1920"))

Engines are specific to the GPU, the TensorRT version, the precision and the
shape profile, so every engine gets `model.plan.json` beside it (the engine
bytes themselves stay plain, loadable by `trtexec` and Triton).

TensorRT 10 picks reduced precision through builder flags (FP16, INT8 with an
entropy calibrator over photos). TensorRT 11 removed those flags: networks are
strongly typed, so FP16 is built from the FP16 ONNX of `convert_fp16` and INT8
from the QDQ ONNX of `quantize_int8`. `build_engine` does the right thing for
the installed version. No torch is imported here.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cartoongan import __version__
from cartoongan._deps import require
from cartoongan._io import atomic_write_bytes, sha256_file
from cartoongan.errors import CartoonGANError, InvalidInput

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
TENSORRT_HINT = 'pip install "cartoongan[tensorrt]" on a machine with an NVIDIA GPU'


class EngineBuildError(CartoonGANError):
    """TensorRT could not parse the model or build the engine."""


# --------------------------------------------------------------------------- shapes


def parse_shape(text: str, what: str = "shape") -> tuple[int, int, int, int]:
    """ "1x3x720x1280" -> (1, 3, 720, 1280): NCHW, 3 channels, positive, H and W multiples of 4."""
    try:
        dims = tuple(int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise InvalidInput(f"{what} {text!r}: expected NxCxHxW, e.g. 1x3x720x1280") from None
    if len(dims) != 4:
        raise InvalidInput(f"{what} {text!r}: expected 4 dimensions NxCxHxW, got {len(dims)}")
    n, c, h, w = dims
    if c != 3:
        raise InvalidInput(f"{what} {text!r}: the model takes 3 channels (RGB), got {c}")
    if n < 1 or h < 8 or w < 8:
        raise InvalidInput(f"{what} {text!r}: batch must be >= 1 and height, width >= 8")
    if h % 4 or w % 4:
        raise InvalidInput(f"{what} {text!r}: height and width must be multiples of 4 (the generator's stride)")
    return dims  # type: ignore[return-value]


@dataclass(frozen=True)
class Profile:
    """TensorRT's optimization profile: the smallest, typical and largest input shapes."""

    min: tuple[int, int, int, int] = (1, 3, 64, 64)
    opt: tuple[int, int, int, int] = (1, 3, 720, 1280)
    max: tuple[int, int, int, int] = (4, 3, 1088, 1920)

    @classmethod
    def parse(cls, min_shape: str, opt_shape: str, max_shape: str) -> "Profile":
        profile = cls(parse_shape(min_shape, "--min-shape"), parse_shape(opt_shape, "--opt-shape"),
                      parse_shape(max_shape, "--max-shape"))  # fmt: skip
        return profile.validate()

    def validate(self) -> "Profile":
        for axis, name in ((0, "batch"), (2, "height"), (3, "width")):
            low, mid, high = self.min[axis], self.opt[axis], self.max[axis]
            if not low <= mid <= high:
                raise InvalidInput(f"shape profile: {name} must satisfy min <= opt <= max, got {low}, {mid}, {high}")
        return self

    def contains(self, shape: tuple[int, ...]) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "Profile":
        return cls(*(tuple(values[k]) for k in ("min", "opt", "max")))

    def __str__(self) -> str:
        return " ".join(f"--{k}-shape {'x'.join(map(str, v))}" for k, v in asdict(self).items())


# --------------------------------------------------------------------------- identity and sidecar


def tensorrt_version() -> str:
    return require("tensorrt", "building TensorRT engines").__version__


def major_version(version: str) -> int:
    return int(version.split(".")[0])


def current_identity() -> dict:
    """What an engine built here is specific to: TensorRT version, GPU name, compute capability."""
    from cartoongan.sdk.cuda import Cuda

    gpu = Cuda.load().identity()
    return {"tensorrt_version": tensorrt_version(), "gpu_name": gpu.name, "compute_capability": gpu.compute_capability}


def sidecar_path(engine: str | Path) -> Path:
    return Path(f"{engine}.json")


def read_sidecar(engine: str | Path) -> dict | None:
    try:
        return json.loads(sidecar_path(engine).read_text())
    except (OSError, ValueError):
        return None


def sidecar_mismatches(sidecar: dict | None, expected: dict) -> list[str]:
    """Readable differences between an engine's sidecar and what this machine / request needs."""
    if sidecar is None:
        return ["the engine has no readable sidecar (.plan.json)"]
    return [f"{key}: engine has {sidecar.get(key)!r}, needed {value!r}"
            for key, value in expected.items() if sidecar.get(key) != value]  # fmt: skip


# --------------------------------------------------------------------------- the builder


def _onnx_precision(path: Path) -> str:
    onnx = require("onnx", "reading ONNX metadata")
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}.get("cartoongan.precision", "fp32")


def _model_metadata(path: Path) -> dict:
    """Name, range and order of the image tensors, for the SDK and Triton (read with ONNX Runtime)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    return {
        "input_name": session.get_inputs()[0].name,
        "output_name": session.get_outputs()[0].name,
        "model_metadata": {k: v for k, v in meta.items() if k.startswith("cartoongan.")},
    }


def _calibrator(trt, folder: Path, profile: Profile, cache: Path):
    """TensorRT 10's entropy calibrator: photos at the profile's optimal height and width."""
    from cartoongan.export.onnx import _ImageReader
    from cartoongan.sdk.cuda import Cuda

    _, _, h, w = profile.opt
    reader = _ImageReader(folder, min(h, w), limit=64)
    cuda = Cuda.load()
    size = max(b.nbytes for b in reader.batches)
    device = cuda.device_alloc(size)
    stream = cuda.stream()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = iter(reader.batches)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            cuda.to_device(device, np.ascontiguousarray(batch), stream)
            cuda.synchronize(stream)
            return [device]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data):
            atomic_write_bytes(cache, bytes(data))

    return EntropyCalibrator()


def build_engine(
    onnx_path: str | Path,
    output: str | Path,
    precision: str = "fp16",
    profile: Profile = Profile(),
    calibration: str | Path | None = None,
    workspace_gb: float | None = None,
    timing_cache: str | Path | None = None,
) -> Path:
    """Build a serialized engine from an ONNX generator; writes `output` and `output.json` atomically."""
    if precision not in PRECISIONS:
        raise InvalidInput(f"precision must be one of {PRECISIONS}, got {precision!r}")
    onnx_path, output = Path(onnx_path), Path(output)
    if not onnx_path.is_file():
        raise InvalidInput(f"{onnx_path} does not exist; expected an .onnx model made by `cartoongan export onnx`")
    profile.validate()
    trt = require("tensorrt", "building TensorRT engines")
    major = major_version(trt.__version__)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="cartoongan-engine-") as tmp:
        source = _source_for(onnx_path, precision, major, calibration, Path(tmp))
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        strongly_typed = major >= 11 or _onnx_precision(source) != "fp32"  # types come from the ONNX
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(source.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineBuildError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
        input_name = network.get_input(0).name
        config = builder.create_builder_config()
        if workspace_gb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
        trt_profile = builder.create_optimization_profile()
        trt_profile.set_shape(input_name, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(trt_profile)
        if not strongly_typed:  # weakly typed (TensorRT 10 with an fp32 ONNX): precision through builder flags
            if precision in ("fp16", "int8"):
                config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers fall back to FP16, not FP32
            if precision == "int8":
                if calibration is None:
                    raise InvalidInput("--precision int8 needs --calibration DIR (photos) to calibrate")
                config.set_flag(trt.BuilderFlag.INT8)
                config.int8_calibrator = _calibrator(trt, Path(calibration), profile, Path(tmp) / "calib.cache")
                config.set_calibration_profile(trt_profile)
        cache = None
        if timing_cache:
            blob = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
            cache = config.create_timing_cache(blob)
            config.set_timing_cache(cache, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"TensorRT {trt.__version__} failed to build an engine for {onnx_path} "
                                   f"({precision}, {profile}); see the messages above")  # fmt: skip
        if cache is not None:
            atomic_write_bytes(Path(timing_cache), bytes(config.get_timing_cache().serialize()))
        atomic_write_bytes(output, bytes(serialized))
        sidecar = {
            **current_identity(),
            "precision": precision,
            "profile": profile.to_dict(),
            "onnx_sha256": sha256_file(onnx_path),
            "built_from": onnx_path.name,
            "strongly_typed": strongly_typed,
            "build_seconds": round(time.monotonic() - started, 1),
            "cartoongan_version": __version__,
            **_model_metadata(source),
        }
        atomic_write_bytes(sidecar_path(output), json.dumps(sidecar, indent=2).encode())
    return output


def _source_for(onnx_path: Path, precision: str, major: int, calibration, tmp: Path) -> Path:
    """The ONNX that TensorRT parses: as given, or (strongly typed builds) its FP16 / QDQ INT8 version."""
    have = _onnx_precision(onnx_path)
    if have == precision:
        return onnx_path
    if have != "fp32":
        raise InvalidInput(f"{onnx_path} is a {have} model; build a {precision} engine from the fp32 ONNX")
    if major < 11 and precision == "fp16":
        return onnx_path  # the FP16 builder flag does it
    if major < 11 and precision == "int8":
        return onnx_path  # implicit quantization with the entropy calibrator
    from cartoongan.export.onnx import convert_fp16, quantize_int8

    if precision == "fp16":
        return convert_fp16(onnx_path, tmp / "model.fp16.onnx")
    if calibration is None:
        raise InvalidInput(f"TensorRT {major} builds INT8 from a QDQ ONNX: pass --calibration DIR to quantize it")
    path, value = quantize_int8(onnx_path, tmp / "model.int8.onnx", calibration)
    log.info("INT8 QDQ model: %.1f dB PSNR against fp32 on the calibration photos", value)
    return path
