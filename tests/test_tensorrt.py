"""TensorRT deployment: everything that needs no GPU runs here; the rest is marked `gpu` and skips cleanly."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cartoongan.errors import EngineMismatch, InvalidInput, MissingDependency
from cartoongan.export.engine import Profile, parse_shape, sidecar_mismatches
from cartoongan.sdk.engine_cache import cache_key, cached_engine, check_engine, expected_sidecar

MACHINE = {"tensorrt_version": "10.9.0", "gpu_name": "NVIDIA H200", "compute_capability": "9.0"}


# --------------------------------------------------------------------------- shapes


def test_parse_shape():
    assert parse_shape("1x3x720x1280") == (1, 3, 720, 1280)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1x3x720", "4 dimensions"),
        ("1x3xAx4", "expected NxCxHxW"),
        ("1x4x64x64", "3 channels"),
        ("0x3x64x64", "batch must be >= 1"),
        ("1x3x4x64", "height, width >= 8"),
        ("1x3x66x64", "multiples of 4"),
    ],
)
def test_parse_shape_rejects(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_shape(text)


def test_profile_order_is_checked_and_round_trips():
    profile = Profile.parse("1x3x64x64", "2x3x256x256", "4x3x512x512")
    assert Profile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert profile.contains((3, 3, 100, 500)) and not profile.contains((5, 3, 100, 100))
    assert str(profile) == "--min-shape 1x3x64x64 --opt-shape 2x3x256x256 --max-shape 4x3x512x512"
    with pytest.raises(InvalidInput, match="height must satisfy min <= opt <= max"):
        Profile.parse("1x3x512x64", "1x3x256x256", "1x3x512x512")
    with pytest.raises(InvalidInput, match="batch must satisfy"):
        Profile.parse("4x3x64x64", "1x3x256x256", "8x3x512x512")


def test_cli_engine_rejects_bad_shapes_before_touching_tensorrt(tmp_path, capsys):
    from cartoongan.cli import main

    model, engine = str(tmp_path / "m.onnx"), str(tmp_path / "m.plan")
    code = main(["export", "engine", model, "-o", engine, "--max-shape", "4x3x1080"])
    assert code == 1
    assert "--max-shape '4x3x1080': expected 4 dimensions" in capsys.readouterr().err


# --------------------------------------------------------------------------- cache keys and sidecars


def test_cache_key_changes_with_every_input():
    profile = Profile()
    base = cache_key("abc", MACHINE, "fp16", profile)
    assert base == cache_key("abc", dict(MACHINE), "fp16", Profile())  # stable
    variants = [
        cache_key("abd", MACHINE, "fp16", profile),
        cache_key("abc", {**MACHINE, "tensorrt_version": "11.0.0"}, "fp16", profile),
        cache_key("abc", {**MACHINE, "gpu_name": "Orin"}, "fp16", profile),
        cache_key("abc", {**MACHINE, "compute_capability": "8.7"}, "fp16", profile),
        cache_key("abc", MACHINE, "fp32", profile),
        cache_key("abc", MACHINE, "fp16", Profile(max=(8, 3, 1088, 1920))),
    ]
    assert len({base, *variants}) == 7


def test_sidecar_mismatches_say_what_differs():
    expected = expected_sidecar("abc", MACHINE, "fp16", Profile())
    assert sidecar_mismatches(dict(expected), expected) == []
    problems = sidecar_mismatches({**expected, "gpu_name": "Orin", "precision": "fp32"}, expected)
    assert problems == [
        "gpu_name: engine has 'Orin', needed 'NVIDIA H200'",
        "precision: engine has 'fp32', needed 'fp16'",
    ]
    assert "no readable sidecar" in sidecar_mismatches(None, expected)[0]


def fake_builder(log: Path, seconds: float = 0.0, machine: dict = MACHINE):
    """Stands in for TensorRT: writes an engine and the sidecar a real build would, and logs the call."""
    from cartoongan.export.engine import sha256_file, sidecar_path

    def build(onnx_path, engine, precision, profile, calibration=None):
        with open(log, "a") as f:
            f.write(f"{engine.name}\n")
        time.sleep(seconds)
        engine.write_bytes(b"engine bytes")
        sidecar = {**expected_sidecar(sha256_file(onnx_path), machine, precision, profile),
                   "input_name": "image", "output_name": "cartoon"}  # fmt: skip
        sidecar_path(engine).write_text(json.dumps(sidecar))
        return engine

    return build


@pytest.fixture
def onnx_file(tmp_path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"pretend onnx")
    return path


def test_engine_is_built_once_then_served_from_the_cache(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    kwargs = dict(cache_dir=tmp_path / "cache", builder=fake_builder(log), identity=lambda: MACHINE)
    first = cached_engine(onnx_file, "fp16", Profile(), **kwargs)
    second = cached_engine(onnx_file, "fp16", Profile(), **kwargs)
    assert first == second and first.read_bytes() == b"engine bytes"
    assert first.name.startswith("model-fp16-") and first.suffix == ".plan"
    assert log.read_text().count("\n") == 1
    cached_engine(onnx_file, "fp32", Profile(), **kwargs)  # another precision is another engine
    onnx_file.write_bytes(b"retrained onnx")  # changed model bytes: another engine
    cached_engine(onnx_file, "fp16", Profile(), **kwargs)
    assert log.read_text().count("\n") == 3


def test_engine_from_another_machine_is_rebuilt_or_refused(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    cache = tmp_path / "cache"
    engine = cached_engine(onnx_file, "fp16", Profile(), cache, builder=fake_builder(log), identity=lambda: MACHINE)
    # the same file name now holds an engine whose sidecar says it was built on an Orin
    sidecar = json.loads(Path(f"{engine}.json").read_text())
    Path(f"{engine}.json").write_text(json.dumps({**sidecar, "gpu_name": "Orin"}))
    with pytest.raises(EngineMismatch, match=r"gpu_name: engine has 'Orin'.*cartoongan export engine .*model.onnx"):
        cached_engine(onnx_file, "fp16", Profile(), cache, rebuild=False, builder=fake_builder(log),
                      identity=lambda: MACHINE)  # fmt: skip
    assert log.read_text().count("\n") == 1
    cached_engine(onnx_file, "fp16", Profile(), cache, builder=fake_builder(log), identity=lambda: MACHINE)
    assert log.read_text().count("\n") == 2
    assert json.loads(Path(f"{engine}.json").read_text())["gpu_name"] == "NVIDIA H200"


def test_missing_engine_with_rebuild_disabled_says_how_to_build_it(onnx_file, tmp_path):
    with pytest.raises(EngineMismatch, match=r"no cached engine .*cartoongan export engine .* --precision int8"):
        cached_engine(onnx_file, "int8", Profile(), tmp_path, rebuild=False, builder=fake_builder(tmp_path / "l"),
                      identity=lambda: MACHINE)  # fmt: skip


def test_check_engine_refuses_a_plan_built_elsewhere(tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"engine bytes")
    with pytest.raises(EngineMismatch, match="no readable sidecar"):
        check_engine(plan, identity=lambda: MACHINE)
    Path(f"{plan}.json").write_text(json.dumps({**MACHINE, "tensorrt_version": "8.6.1"}))
    with pytest.raises(EngineMismatch, match="tensorrt_version: engine has '8.6.1', needed '10.9.0'"):
        check_engine(plan, identity=lambda: MACHINE)
    Path(f"{plan}.json").write_text(json.dumps(MACHINE))
    assert check_engine(plan, identity=lambda: MACHINE) == MACHINE


def _build_in_another_process(onnx_file: str, cache: str, log: str) -> str:
    return str(cached_engine(onnx_file, "fp16", Profile(), cache, builder=fake_builder(Path(log), seconds=1.0),
                             identity=lambda: MACHINE))  # fmt: skip


def test_two_processes_build_the_same_engine_once(onnx_file, tmp_path):
    log, cache = tmp_path / "builds.log", tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        args = [(str(onnx_file), str(cache), str(log))] * 2
        engines = pool.starmap(_build_in_another_process, args)
    assert engines[0] == engines[1]
    assert log.read_text().count("\n") == 1  # the second process waited on the lock, then found the engine


# --------------------------------------------------------------------------- CUDA memory and backend choice


def test_clear_error_without_pycuda_or_cuda_python(monkeypatch):
    from cartoongan.sdk.cuda import Cuda

    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    with pytest.raises(MissingDependency, match=r"pycuda or cuda-python.*cartoongan\[tensorrt\]"):
        Cuda.load()


def test_tensorrt_backend_is_skipped_by_auto_when_unavailable(tiny_onnx):
    from cartoongan.sdk.backends import BACKENDS, TensorRTBackend, open_backend

    assert list(BACKENDS)[0] == "tensorrt"  # tried first by "auto"
    if not TensorRTBackend.available():
        backend = open_backend("auto", tiny_onnx)
        assert backend.name != "tensorrt"
        backend.close()


def test_onnxruntime_gpu_provider_options():
    from cartoongan.sdk.backends.onnxruntime import PROVIDERS, provider_options

    options = provider_options("tensorrt", precision="fp16", engine_cache="/tmp/engines",
                               profile=Profile.parse("1x3x64x64", "1x3x256x256", "2x3x512x512"))  # fmt: skip
    assert len(options) == len(PROVIDERS["tensorrt"])
    trt = options[0]
    assert trt["trt_fp16_enable"] == "1" and trt["trt_engine_cache_enable"] == "1"
    assert trt["trt_engine_cache_path"] == "/tmp/engines/onnxruntime-tensorrt"
    assert (trt["trt_profile_min_shapes"], trt["trt_profile_max_shapes"]) == ("image:1x3x64x64", "image:2x3x512x512")
    assert provider_options("tensorrt", precision="fp32")[0]["trt_fp16_enable"] == "0"
    assert len(provider_options("cuda")) == 2 and provider_options("cpu") == [{}]


def test_triton_repository_for_an_engine_uses_its_sidecar(tmp_path):
    from google.protobuf import text_format

    from cartoongan.export.triton import engine_io_from_sidecar, export_triton
    from tests.test_triton import model_config_module

    plan = tmp_path / "model.plan"
    plan.write_bytes(b"engine bytes")
    with pytest.raises(InvalidInput, match="sidecar"):
        engine_io_from_sidecar(plan)
    Path(f"{plan}.json").write_text(json.dumps({"input_name": "image", "output_name": "cartoon"}))
    folder = export_triton(plan, tmp_path / "repo", engine_io=engine_io_from_sidecar(plan))
    pb = model_config_module()
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())
    assert config.platform == "tensorrt_plan" and (folder / "1" / "model.plan").read_bytes() == b"engine bytes"


# --------------------------------------------------------------------------- on a GPU


def _has_tensorrt_gpu() -> bool:
    from cartoongan.sdk.backends import TensorRTBackend

    return TensorRTBackend.available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_tensorrt_gpu(), reason="needs TensorRT, pycuda/cuda-python and an NVIDIA GPU")
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 3e-2)])
def test_tensorrt_engine_matches_onnxruntime(tiny_onnx, tmp_path, precision, tolerance):
    from cartoongan.sdk.backends import open_backend

    profile = Profile.parse("1x3x32x32", "2x3x64x64", "2x3x128x128")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 64, 96)).astype(np.float32)  # 3 > max batch: split
    reference = open_backend("onnxruntime-cpu", tiny_onnx).run(x)
    trt = open_backend("tensorrt", tiny_onnx, precision=precision, profile=profile, engine_cache=tmp_path)
    try:
        assert np.abs(trt.run(x) - reference).max() < tolerance
        with pytest.raises(InvalidInput, match="outside the engine's profile"):
            trt.run(np.zeros((1, 3, 256, 256), np.float32))
    finally:
        trt.close()
    assert list(tmp_path.glob("*.plan")) and list(tmp_path.glob("*.plan.json"))


@pytest.mark.gpu
def test_onnxruntime_cuda_matches_cpu(tiny_onnx):
    from cartoongan.sdk.backends import OnnxRuntimeBackend, open_backend

    if not OnnxRuntimeBackend.available("cuda"):
        pytest.skip("needs onnxruntime-gpu and an NVIDIA GPU")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    reference = open_backend("onnxruntime-cpu", tiny_onnx).run(x)
    cuda = open_backend("onnxruntime-cuda", tiny_onnx, strict=True)
    assert np.abs(cuda.run(x) - reference).max() < 1e-3
