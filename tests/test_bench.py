"""`cartoongan bench`: argument parsing, MAC counting, and a real 2-iteration run on a tiny model."""

from __future__ import annotations

import json

import pytest

from cartoongan import bench
from cartoongan.cli import main
from cartoongan.errors import InvalidInput


def test_parse_sizes():
    assert bench.parse_sizes("256, 720p,1280x720") == [("256", 256, 256), ("720p", 720, 1280), ("1280x720", 720, 1280)]


@pytest.mark.parametrize(
    "text, message",
    [("abc", "expected N"), ("4", "between 8 and 8192"), ("100x99999", "between 8 and 8192"), ("", "is empty")],
)
def test_parse_sizes_rejects(text, message):
    with pytest.raises(InvalidInput, match=message):
        bench.parse_sizes(text)


def test_parse_ints_and_choices_reject():
    assert bench.parse_ints("1,4,8", "--batch") == [1, 4, 8]
    with pytest.raises(InvalidInput, match="whole numbers"):
        bench.parse_ints("1,x", "--batch")
    with pytest.raises(InvalidInput, match="between 1 and"):
        bench.parse_ints("0", "--batch")
    with pytest.raises(InvalidInput, match="unknown"):
        bench.parse_choices("onnxruntime-cpu,tensorflow", "--backends", bench.BACKEND_CHOICES)


def test_onnx_macs_match_the_torch_count(tiny_checkpoint, tiny_onnx):
    from cartoongan.export.onnx import load_generator
    from cartoongan.training.networks import count_macs

    generator, _ = load_generator(tiny_checkpoint)
    expected = count_macs(generator, 64, 96)
    counted = bench.onnx_macs(tiny_onnx, 64, 96)
    # BatchNorm is folded away in the graph; the blurs are depthwise Convs there, counted alike in torch
    assert counted == pytest.approx(expected, rel=0.02), (counted, expected)


def test_bench_runs_and_writes_every_field(tiny_checkpoint, tiny_onnx, tmp_path, capsys):
    out_json, out_md, out_png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    code = main([
        "bench", "--model", str(tiny_onnx), "--checkpoint", str(tiny_checkpoint),
        "--backends", "onnxruntime-cpu,torch,onnxruntime-cuda", "--precisions", "fp32,int8",
        "--sizes", "32,48x40", "--batch", "1,2", "--iters", "2", "--warmup", "0",
        "--json", str(out_json), "--markdown", str(out_md), "--plot", str(out_png),
    ])  # fmt: skip
    assert code == 0
    report = json.loads(out_json.read_text())
    assert {"cpu", "cpu_count", "packages", "cpu_gemm_peak_gflops"} <= set(report["environment"])
    assert report["environment"]["cpu_gemm_peak_gflops"] > 0
    rows = report["rows"]
    configs = {(r["backend"], r["precision"]) for r in rows}
    assert {("onnxruntime-cpu", "fp32"), ("torch-cpu", "fp32")} <= configs
    assert len([r for r in rows if r["backend"] == "onnxruntime-cpu"]) == 4  # 2 sizes x 2 batches
    fields = set(bench.Row.__dataclass_fields__)
    for row in rows:
        assert set(row) == fields
        assert row["iterations"] == 2
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["first_call_ms"] > 0 and row["images_per_s"] > 0 and row["peak_host_mb"] > 0
        assert row["gmacs_per_image"] > 0 and 0 < row["peak_fraction"]
    wide = next(r for r in rows if r["size"] == "48x40")
    assert (wide["height"], wide["width"]) == (40, 48)
    # no int8 model beside the tiny one and no --calibration: skipped with the reason, not silently dropped
    reasons = {(s["backend"], s["precision"]): s["reason"] for s in report["skipped"]}
    assert "--calibration" in reasons[("onnxruntime-cpu", "int8")]
    assert ("onnxruntime-cuda", "fp32") in reasons or any(r["backend"] == "onnxruntime-cuda" for r in rows)
    assert "| backend | precision |" in out_md.read_text()
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "speed-up over torch-cpu fp32 at 32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sizes", "huge"], "expected N"),
        (["--batch", "0"], "between 1 and 256"),
        (["--backends", "tflite"], "unknown"),
        (["--precisions", "int4"], "unknown"),
        (["--iters", "0"], "--iters >= 1"),
        (["--model", "missing.onnx"], "does not exist"),
        (["--calibration", "no/such/folder"], "not a folder"),
    ],
)
def test_bench_rejects_bad_arguments(argv, message, tiny_onnx, capsys):
    model = [] if "--model" in argv else ["--model", str(tiny_onnx)]
    assert main(["bench", *model, "--backends", "onnxruntime-cpu", *argv]) == 1
    assert message in capsys.readouterr().err
