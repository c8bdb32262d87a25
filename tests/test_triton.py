import importlib.util
import os

import pytest

from cartoongan.errors import InvalidInput
from cartoongan.export.triton import export_triton


def model_config_module():
    """Triton's model_config_pb2, as shipped in tritonclient."""
    tritonclient = pytest.importorskip("tritonclient")
    path = os.path.join(os.path.dirname(tritonclient.__file__), "grpc", "model_config_pb2.py")
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # plain generated protobuf code; avoids importing grpc
    return module


def test_repository_layout_and_config_parse_as_triton_model_config(tiny_onnx, tmp_path):
    from google.protobuf import text_format

    pb = model_config_module()
    folder = export_triton(tiny_onnx, tmp_path / "repo", name="toon", max_batch_size=4)
    assert (folder / "1" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())  # raises if malformed
    assert (config.name, config.platform, config.max_batch_size) == ("toon", "onnxruntime_onnx", 4)
    assert [(i.name, list(i.dims)) for i in config.input] == [("image", [3, -1, -1])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("cartoon", [3, -1, -1])]
    assert config.input[0].data_type == config.output[0].data_type == pb.TYPE_FP32
    assert list(config.dynamic_batching.preferred_batch_size) == [1, 4]


def test_triton_export_refuses_bad_models(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        export_triton(tmp_path / "missing.onnx", tmp_path / "repo")
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"x")
    with pytest.raises(InvalidInput, match=r"expected an .onnx model or a TensorRT .plan engine"):
        export_triton(bad, tmp_path / "repo")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(InvalidInput, match="cannot be loaded as an ONNX model"):
        export_triton(broken, tmp_path / "repo")
