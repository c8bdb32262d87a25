import numpy as np
import onnx
import pytest
import torch

from cartoongan.errors import CheckpointError
from cartoongan.export.onnx import (
    convert_fp16,
    export_onnx,
    fold_batchnorm,
    load_generator,
    psnr,
    quantize_int8,
    read_metadata,
)
from cartoongan.training.networks import build_generator
from tests.conftest import make_dataset


def test_batchnorm_folding_keeps_the_function_and_removes_every_batchnorm():
    torch.manual_seed(0)
    for arch in ("cartoongan-bn", "cartoongan-lite"):
        generator = build_generator(arch)
        for m in generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
        generator.eval()
        folded = fold_batchnorm(generator)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules())  # original untouched
        x = torch.rand(1, 3, 36, 28) * 2 - 1
        with torch.no_grad():
            assert torch.allclose(folded(x), generator(x), atol=1e-5)


def test_onnx_export_is_checked_dynamic_and_carries_metadata(tiny_checkpoint, tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    assert not any(node.op_type == "BatchNormalization" for node in model.graph.node)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # dynamic N, H, W
    meta = read_metadata(tiny_onnx)
    assert meta["cartoongan.arch"] == "cartoongan-lite"
    assert meta["cartoongan.channel_order"] == "RGB" and meta["cartoongan.input_range"] == "[-1, 1]"
    assert meta["cartoongan.spatial_multiple"] == "4" and meta["cartoongan.training_config_hash"] == "test"
    assert float(meta["cartoongan.parity_max_abs_diff"]) <= 1e-4

    # parity at another batch and size than the export checked
    import onnxruntime as ort

    generator, _ = load_generator(tiny_checkpoint)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 3, 40, 72)).astype(np.float32)
    got = ort.InferenceSession(str(tiny_onnx)).run(None, {"image": x})[0]
    with torch.no_grad():
        expected = generator(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4


def test_fp16_keeps_float32_io_and_int8_reports_psnr(tiny_onnx, tmp_path):
    import onnxruntime as ort

    fp16 = convert_fp16(tiny_onnx, tmp_path / "fp16.onnx")
    session = ort.InferenceSession(str(fp16))
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    reference = ort.InferenceSession(str(tiny_onnx)).run(None, {"image": x})[0]
    assert psnr(session.run(None, {"image": x})[0], reference) > 40
    assert read_metadata(fp16)["cartoongan.precision"] == "fp16"

    photos, _ = make_dataset(tmp_path / "calib", photos=4, cartoons=1)
    int8, value = quantize_int8(tiny_onnx, tmp_path / "int8.onnx", photos, size=32)
    model = onnx.load(str(int8))
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    assert np.isfinite(value) and value > 15  # random weights: only a sanity bound
    assert read_metadata(int8)["cartoongan.int8_psnr_db"] == f"{value:.2f}"


def test_export_refuses_what_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        export_onnx(bad, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
