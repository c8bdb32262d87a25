"""`cartoongan bench`: latency and throughput of a generator across backends, precisions, sizes and batches.

Every row is measured the same way: the backend is created and run once (the
first call: session creation, engine build, kernel selection, reported on its
own), then warmed up, then timed call by call with CUDA synchronised where it
applies. Latency is reported as percentiles, throughput as images per second
at the median latency. Each row is set against the machine's own limit: the
model's multiply-accumulates counted from its ONNX graph, and a measured fp32
GEMM peak of the same device ("roofline": achieved / peak FLOP/s).

Nothing here imports torch unless a `torch` row is asked for.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from cartoongan.errors import BackendUnavailable, CartoonGANError, InvalidInput, MissingDependency

NAMED_SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
BACKEND_CHOICES = ("onnxruntime-cpu", "openvino", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt", "torch")
PRECISION_CHOICES = ("fp32", "fp16", "int8")
# What each backend can run; anything else is listed as skipped with the reason.
SUPPORTED = {
    "onnxruntime-cpu": ("fp32", "int8"),  # fp16 runs on ORT's CPU provider but gains nothing
    "openvino": ("fp32", "int8"),
    "onnxruntime-cuda": ("fp32", "fp16"),
    "onnxruntime-tensorrt": ("fp32", "fp16"),
    "tensorrt": ("fp32", "fp16", "int8"),
    "torch": ("fp32", "fp16"),  # fp16 on CUDA only
}


# --------------------------------------------------------------------------- arguments


def parse_sizes(text: str) -> list[tuple[str, int, int]]:
    """ "256,512,720p,1280x720" -> [(label, height, width), ...]; N is NxN, WxH is width x height."""
    sizes = []
    for item in (s.strip().lower() for s in text.split(",") if s.strip()):
        if item in NAMED_SIZES:
            sizes.append((item, *NAMED_SIZES[item]))
            continue
        try:
            if "x" in item:
                width, height = (int(v) for v in item.split("x"))
            else:
                width = height = int(item)
        except ValueError:
            raise InvalidInput(
                f"size {item!r}: expected N (NxN pixels), WIDTHxHEIGHT or one of {sorted(NAMED_SIZES)}"
            ) from None
        if not 8 <= min(width, height) or max(width, height) > 8192:
            raise InvalidInput(f"size {item!r}: each side must be between 8 and 8192 pixels")
        sizes.append((item, height, width))
    if not sizes:
        raise InvalidInput("--sizes is empty; expected e.g. 256,512,720p")
    return sizes


def parse_ints(text: str, what: str, low: int = 1, high: int = 1024) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInput(f"{what} {text!r}: expected comma-separated whole numbers, e.g. 1,4,8") from None
    if not values or any(not low <= v <= high for v in values):
        raise InvalidInput(f"{what} {text!r}: each value must be between {low} and {high}")
    return values


def parse_choices(text: str, what: str, choices: tuple[str, ...]) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in choices]
    if not values or unknown:
        raise InvalidInput(f"{what}: unknown {unknown or text!r}; expected a comma-separated list of {choices}")
    return values


# --------------------------------------------------------------------------- environment and limits


def environment() -> dict:
    env = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_description(),
        "packages": {},
    }
    for package in ("cartoongan", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "torch",
                    "tensorrt", "cuda-python", "opencv-python-headless"):  # fmt: skip
        try:
            env["packages"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_description() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_gemm_peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Best-of fp32 matrix-multiply rate of this CPU (numpy's BLAS, all threads): the roofline's ceiling."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def cuda_gemm_peak_gflops(dtype: str = "fp32", n: int = 4096, repeats: int = 10) -> float | None:
    """Best-of matrix-multiply rate of the GPU through torch (None without torch+CUDA)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    kind = torch.float16 if dtype == "fp16" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 ceiling, not TF32's
    a = torch.randn(n, n, device="cuda", dtype=kind)
    b = torch.randn(n, n, device="cuda", dtype=kind)
    a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def onnx_macs(model_path: str | Path, height: int, width: int) -> int | None:
    """Multiply-accumulates of one image through the model's Conv / ConvTranspose nodes (needs `onnx`)."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    model = onnx.load(str(model_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, height, width)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for value_info in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        shapes[value_info.name] = [d.dim_value for d in value_info.type.tensor_type.shape.dim]
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose") or node.input[1] not in weights:
            continue
        kernel = weights[node.input[1]]
        if node.op_type == "Conv":  # weights: out, in/groups, kh, kw; one MAC per output element per tap
            out = shapes.get(node.output[0])
            if not out or 0 in out:
                return None
            total += int(np.prod(out)) * kernel[1] * kernel[2] * kernel[3]
        else:  # weights: in, out/groups, kh, kw; every input element scatters a kernel
            inp = shapes.get(node.input[0])
            if not inp or 0 in inp:
                return None
            total += int(np.prod(inp)) * kernel[1] * kernel[2] * kernel[3]
    return total


# --------------------------------------------------------------------------- memory


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # since process start


# --------------------------------------------------------------------------- runners


class Runner:
    """One (backend, precision) configuration: `__init__` loads, `__call__(x)` runs and waits, `close()`."""

    device = "cpu"

    def __call__(self, x: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...

    def peak_device_mb(self) -> float | None:
        return None


class SdkRunner(Runner):
    """Any SDK backend (ONNX Runtime providers, OpenVINO, native TensorRT), forced onto its device."""

    def __init__(self, backend: str, model_path: Path, precision: str = "fp32"):
        from cartoongan.sdk.backends import open_backend

        self.backend = open_backend(backend, model_path, strict=True, precision=precision)
        self.device = "cpu" if backend in ("onnxruntime-cpu", "openvino") else "cuda"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.backend.run(x)  # outputs come back to host memory: the call is complete

    def close(self) -> None:
        self.backend.close()


class TorchRunner(Runner):
    """The PyTorch generator as users run it today: eager, inference mode; on CUDA channels_last."""

    def __init__(self, checkpoint: Path, precision: str, device: str):
        import torch

        from cartoongan.export.onnx import load_generator

        self.torch = torch
        self.device = device
        if precision == "fp16" and device != "cuda":
            raise BackendUnavailable("torch fp16 runs on CUDA only here (CPU half-precision kernels are slow)")
        generator, _ = load_generator(checkpoint)
        generator = generator.eval().to(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if device == "cuda" else torch.contiguous_format
        self.generator = generator.to(dtype=self.dtype, memory_format=self.memory_format)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            tensor = torch.from_numpy(x).to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
            return self.generator(tensor).float().cpu().numpy()  # .cpu() waits for the GPU

    def peak_device_mb(self) -> float | None:
        if self.device != "cuda":
            return None
        return self.torch.cuda.max_memory_allocated() / 2**20

    def close(self) -> None:
        self.generator = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()


def torch_devices() -> list[str]:
    try:
        import torch
    except ImportError:
        return []
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


# --------------------------------------------------------------------------- measurement


@dataclass
class Row:
    backend: str
    precision: str
    device: str
    size: str
    height: int
    width: int
    batch: int
    iterations: int
    first_call_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    images_per_s: float
    peak_host_mb: float
    peak_device_mb: float | None
    gmacs_per_image: float | None
    achieved_gflops: float | None
    peak_gflops: float | None
    peak_fraction: float | None


@dataclass
class Skipped:
    backend: str
    precision: str
    reason: str


@dataclass
class Report:
    environment: dict
    settings: dict
    rows: list[Row] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "environment": self.environment,
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
            "skipped": [asdict(s) for s in self.skipped],
        }


def time_calls(fn: Callable[[], object], warmup: int, iters: int, max_seconds: float) -> list[float]:
    """Seconds per call after `warmup` calls; stops early (keeping at least 2) once `max_seconds` is spent."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2 and time.perf_counter() - start > max_seconds:
            break
    return times


def measure(
    make_runner: Callable[[], Runner],
    sizes: list[tuple[str, int, int]],
    batches: list[int],
    warmup: int,
    iters: int,
    max_seconds: float,
) -> list[dict]:
    """Time one configuration over every size and batch; the first call is timed from creation."""
    rng = np.random.default_rng(0)
    results = []
    _reset_peak_rss()
    created = time.perf_counter()
    runner = make_runner()
    try:
        first = True
        for label, height, width in sizes:
            for batch in batches:
                x = rng.uniform(-1, 1, (batch, 3, height, width)).astype(np.float32)
                if not first:
                    _reset_peak_rss()
                t0 = created if first else time.perf_counter()
                runner(x)
                first_call = time.perf_counter() - t0
                first = False
                times = time_calls(lambda x=x: runner(x), warmup, iters, max_seconds)
                results.append({
                    "size": label, "height": height, "width": width, "batch": batch, "device": runner.device,
                    "first_call_ms": first_call * 1e3, "times": times,
                    "peak_host_mb": _peak_rss_mb(), "peak_device_mb": runner.peak_device_mb(),
                })  # fmt: skip
    finally:
        runner.close()
        gc.collect()
    return results


def _sig(value: float | None, digits: int = 4) -> float | None:
    """`value` to `digits` significant digits: readable JSON that never rounds a small figure to 0."""
    return None if value is None else float(f"{value:.{digits}g}")


def _row(backend: str, precision: str, result: dict, gmacs: float | None, peak: float | None) -> Row:
    times = np.array(result["times"]) * 1e3
    p50 = float(np.percentile(times, 50))
    achieved = 2 * gmacs * result["batch"] / (p50 / 1e3) if gmacs else None
    return Row(
        backend=backend,
        precision=precision,
        device=result["device"],
        size=result["size"],
        height=result["height"],
        width=result["width"],
        batch=result["batch"],
        iterations=len(times),
        first_call_ms=_sig(result["first_call_ms"]),
        p50_ms=_sig(p50),
        p90_ms=_sig(float(np.percentile(times, 90))),
        p99_ms=_sig(float(np.percentile(times, 99))),
        images_per_s=_sig(result["batch"] / (p50 / 1e3)),
        peak_host_mb=_sig(result["peak_host_mb"]),
        peak_device_mb=_sig(result["peak_device_mb"]),
        gmacs_per_image=_sig(gmacs),
        achieved_gflops=_sig(achieved),
        peak_gflops=_sig(peak),
        peak_fraction=_sig(achieved / peak) if achieved is not None and peak else None,
    )


# --------------------------------------------------------------------------- models for each precision


class ModelSet:
    """The ONNX file for each precision: siblings `NAME.fp16.onnx` / `NAME.int8.onnx`, else made in a temp dir."""

    def __init__(self, fp32: Path, calibration: Path | None, workdir: Path):
        self.fp32 = fp32
        self.calibration = calibration
        self.workdir = workdir
        self._cache: dict[str, Path] = {"fp32": fp32}

    def get(self, precision: str) -> Path:
        if precision in self._cache:
            return self._cache[precision]
        sibling = self.fp32.with_name(f"{self.fp32.stem}.{precision}.onnx")
        if sibling.is_file():
            path = sibling
        elif precision == "fp16":
            from cartoongan.export.onnx import convert_fp16

            path = convert_fp16(self.fp32, self.workdir / "model.fp16.onnx")
        elif self.calibration is None:
            raise BackendUnavailable(
                f"no {sibling.name} beside the model; pass --calibration DIR (photos) to quantize one for this run"
            )
        else:
            from cartoongan.export.onnx import quantize_int8

            path, _ = quantize_int8(self.fp32, self.workdir / "model.int8.onnx", self.calibration)
        self._cache[precision] = path
        return path


def _available(backend: str) -> bool:
    if backend == "torch":
        return bool(torch_devices())
    from cartoongan.sdk.backends import BACKENDS

    return backend in BACKENDS and BACKENDS[backend][1]()


# --------------------------------------------------------------------------- the command


def run_benchmark(
    model: Path | None = None,
    checkpoint: Path | None = None,
    backends: list[str] | None = None,
    precisions: tuple[str, ...] | list[str] = ("fp32", "fp16", "int8"),
    sizes: list[tuple[str, int, int]] | None = None,
    batches: list[int] | None = None,
    warmup: int = 2,
    iters: int = 10,
    max_seconds: float = 30.0,
    calibration: Path | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> Report:
    """Measure every available (backend, precision) over sizes x batches; see the module docstring."""
    from cartoongan.sdk.model import default_model_path

    if warmup < 0 or iters < 1 or max_seconds <= 0:
        raise InvalidInput(f"--warmup must be >= 0, --iters >= 1 and --max-seconds > 0, got {warmup}, {iters}, "
                           f"{max_seconds}")  # fmt: skip
    sizes = sizes or parse_sizes("256,512")
    batches = batches or [1]
    model = Path(model) if model is not None else default_model_path()
    if not model.is_file():
        raise InvalidInput(f"model {model} does not exist; expected an .onnx file made by `cartoongan export onnx`")
    if checkpoint is None:  # the shipped default carries its generator weights beside it
        candidate = model.with_suffix(".safetensors")
        checkpoint = candidate if candidate.is_file() else None
    if calibration is not None and not Path(calibration).is_dir():
        raise InvalidInput(f"--calibration {calibration} is not a folder of photos")

    report = Report(
        environment=environment(),
        settings={
            "model": str(model), "checkpoint": None if checkpoint is None else str(checkpoint),
            "sizes": [s[0] for s in sizes], "batches": batches, "warmup": warmup, "iters": iters,
            "max_seconds_per_row": max_seconds,
        },
    )  # fmt: skip
    progress("measuring the fp32 GEMM peak of the CPU")
    peaks = {("cpu", "fp32"): cpu_gemm_peak_gflops()}
    report.environment["cpu_gemm_peak_gflops"] = round(peaks[("cpu", "fp32")], 1)
    macs = {(h, w): onnx_macs(model, h, w) for _, h, w in sizes}
    if None in macs.values():
        report.environment["note"] = 'GMACs need the `onnx` package (pip install "cartoongan[export]")'

    with tempfile.TemporaryDirectory(prefix="cartoongan-bench-") as tmp:
        models = ModelSet(model, Path(calibration) if calibration else None, Path(tmp))
        for backend in backends or list(BACKEND_CHOICES):
            for precision in precisions:
                if precision not in SUPPORTED[backend]:
                    report.skipped.append(Skipped(backend, precision, f"{backend} does not run {precision}"))
                    continue
                if not _available(backend):
                    report.skipped.append(Skipped(backend, precision, f"{backend} is not available here"))
                    continue
                devices = torch_devices() if backend == "torch" else [None]
                for device in devices:
                    name = f"torch-{device}" if backend == "torch" else backend
                    if backend == "torch" and precision == "fp16" and device == "cpu":
                        continue
                    try:
                        if backend == "torch":
                            if checkpoint is None:
                                raise BackendUnavailable("torch rows need the generator weights: pass --checkpoint")
                            factory = lambda d=device, p=precision: TorchRunner(checkpoint, p, d)  # noqa: E731
                        else:
                            path = models.get(precision)
                            factory = lambda b=backend, m=path, p=precision: SdkRunner(b, m, p)  # noqa: E731
                        progress(f"{name} {precision}")
                        results = measure(factory, sizes, batches, warmup, iters, max_seconds)
                    except (CartoonGANError, MissingDependency) as exc:
                        report.skipped.append(Skipped(name, precision, str(exc)))
                        continue
                    for result in results:
                        dev = result["device"]
                        if (dev, "fp32") not in peaks and dev == "cuda":
                            peaks[(dev, "fp32")] = cuda_gemm_peak_gflops("fp32")
                            report.environment["cuda_gemm_peak_gflops"] = peaks[(dev, "fp32")]
                        gmacs = macs[(result["height"], result["width"])]
                        gmacs = None if gmacs is None else gmacs / 1e9
                        report.rows.append(_row(name, precision, result, gmacs, peaks.get((dev, "fp32"))))
    return report


# --------------------------------------------------------------------------- output


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: Report) -> str:
    env = report.environment
    lines = [
        f"CPU: {env['cpu']} ({env['cpu_count']} logical cores), fp32 GEMM peak "
        f"{env.get('cpu_gemm_peak_gflops', '-')} GFLOP/s; GPU: {env.get('gpu') or 'none'}",
        "",
        "| backend | precision | size | batch | p50 ms | p90 ms | p99 ms | img/s | first call ms | peak host MB "
        "| GMACs/img | GFLOP/s | of peak |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.backend} | {r.precision} | {r.size} | {r.batch} | {_fmt(r.p50_ms)} | {_fmt(r.p90_ms)} "
            f"| {_fmt(r.p99_ms)} | {_fmt(r.images_per_s, 2)} | {_fmt(r.first_call_ms)} | {_fmt(r.peak_host_mb, 0)} "
            f"| {_fmt(r.gmacs_per_image, 2)} | {_fmt(r.achieved_gflops)} | {_fmt(r.peak_fraction, 2)} |"
        )
    if report.skipped:
        lines += ["", "Skipped:"] + [f"- {s.backend} {s.precision}: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def speedups(report: Report, size: str, batch: int = 1, baseline: str = "torch-cpu") -> list[tuple[str, float]]:
    """(configuration, speed-up over `baseline` fp32, i.e. PyTorch eager) at one size and batch."""
    rows = [r for r in report.rows if r.size == size and r.batch == batch]
    base = next((r for r in rows if r.backend == baseline and r.precision == "fp32"), None)
    if base is None:
        return []
    return [(f"{r.backend} {r.precision}", base.p50_ms / r.p50_ms) for r in rows]


def plot(report: Report, path: Path) -> None:
    """Latency vs resolution (batch 1) and throughput vs batch (largest size), one line per configuration."""
    from cartoongan._deps import require

    require("matplotlib", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cartoongan._io import atomic_write_bytes

    configs = sorted({(r.backend, r.precision) for r in report.rows})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    smallest_batch = min(r.batch for r in report.rows)
    largest = max(report.rows, key=lambda r: r.height * r.width)
    for backend, precision in configs:
        mine = [r for r in report.rows if (r.backend, r.precision) == (backend, precision)]
        by_size = sorted((r for r in mine if r.batch == smallest_batch), key=lambda r: r.height * r.width)
        left.plot([r.height * r.width / 1e6 for r in by_size], [r.p50_ms for r in by_size], "o-",
                  label=f"{backend} {precision}")  # fmt: skip
        by_batch = sorted((r for r in mine if r.size == largest.size), key=lambda r: r.batch)
        right.plot([r.batch for r in by_batch], [r.images_per_s for r in by_batch], "o-",
                   label=f"{backend} {precision}")  # fmt: skip
    left.set(xlabel="megapixels per image", ylabel="p50 latency (ms)", yscale="log",
             title=f"latency vs resolution (batch {smallest_batch})")  # fmt: skip
    right.set(xlabel="batch size", ylabel="images / s", title=f"throughput vs batch ({largest.size})")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    with tempfile.SpooledTemporaryFile() as buffer:
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        buffer.seek(0)
        atomic_write_bytes(Path(path), buffer.read())


def save(report: Report, json_path: str | None, markdown_path: str | None, plot_path: str | None) -> None:
    from cartoongan._io import atomic_write_bytes

    if json_path:
        atomic_write_bytes(Path(json_path), json.dumps(report.to_dict(), indent=2).encode())
    if markdown_path:
        atomic_write_bytes(Path(markdown_path), markdown(report).encode())
    if plot_path and report.rows:
        plot(report, Path(plot_path))
