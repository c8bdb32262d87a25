import subprocess
import sys
import threading

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cartoongan import BackendUnavailable, Cartoonizer, InvalidInput, ModelError
from cartoongan.sdk import image as im
from tests.conftest import smooth_photo


@pytest.fixture(scope="module")
def cartoonizer(tiny_onnx):
    with Cartoonizer(tiny_onnx, backend="onnxruntime-cpu") as c:
        yield c


def photo(h, w, seed=0):
    return smooth_photo(np.random.default_rng(seed), h, w)


def test_matches_torch_on_an_aligned_image(tiny_checkpoint, cartoonizer):
    import torch

    from cartoongan.export.onnx import load_generator

    generator, _ = load_generator(tiny_checkpoint)
    bgr = photo(64, 96)
    x = torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ((generator(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
    got = cartoonizer.run(bgr)[:, :, ::-1].astype(np.float64)
    assert np.abs(got - expected).max() <= 1


def test_reports_what_it_runs_on(cartoonizer):
    assert cartoonizer.backend == "onnxruntime-cpu"
    assert cartoonizer.providers == ["CPUExecutionProvider"]
    assert cartoonizer.info.arch == "cartoongan-lite" and cartoonizer.info.precision == "fp32"
    auto = Cartoonizer(cartoonizer.info.path)  # auto on a CPU-only machine
    assert auto.backend in ("onnxruntime-cpu", "openvino")


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (37, 53, 3), (130, 61, 3)])
def test_odd_sizes_round_trip(cartoonizer, shape):
    image = photo(*shape[:2]) if min(shape[:2]) > 1 else np.full(shape, 128, np.uint8)
    out = cartoonizer.run(image)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_grayscale_alpha_pil_and_lists(cartoonizer):
    from PIL import Image

    gray = cv2.cvtColor(photo(30, 40), cv2.COLOR_BGR2GRAY)
    assert cartoonizer.run(gray).shape == (30, 40, 3)
    assert cartoonizer.run(gray[:, :, None]).shape == (30, 40, 3)
    bgra = np.dstack([photo(30, 40), np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)])
    out = cartoonizer.run(bgra)
    assert out.shape == (30, 40, 4) and np.array_equal(out[:, :, 3], bgra[:, :, 3])

    pil = Image.fromarray(photo(33, 47)[:, :, ::-1].copy())
    result = cartoonizer.run(pil)
    assert isinstance(result, Image.Image) and result.size == pil.size and result.mode == "RGB"
    # PIL images are RGB: the same pixels as numpy in rgb order
    rgb = Cartoonizer(cartoonizer.info.path, backend="onnxruntime-cpu", channel_order="rgb").run(np.asarray(pil))
    assert np.array_equal(np.asarray(result), rgb)

    batch = [photo(32, 32, 1), photo(20, 44, 2), photo(32, 32, 3)]
    outs = cartoonizer.run(batch)
    assert [o.shape for o in outs] == [b.shape for b in batch]
    for image, out in zip(batch, outs):  # batching does not change results
        assert np.abs(cartoonizer.run(image).astype(int) - out).max() <= 1


def test_channel_order_bgr_vs_rgb(tiny_onnx):
    bgr = photo(32, 40)
    out_bgr = Cartoonizer(tiny_onnx, backend="cpu").run(bgr)
    out_rgb = Cartoonizer(tiny_onnx, backend="cpu", channel_order="rgb").run(bgr[:, :, ::-1].copy())
    assert np.array_equal(out_bgr, out_rgb[:, :, ::-1])


def test_tiled_and_untiled_agree(tiny_onnx):
    image = photo(300, 260, 5)
    whole = Cartoonizer(tiny_onnx, backend="cpu", tile_size=1024).run(image).astype(np.float64)
    tiled = Cartoonizer(tiny_onnx, backend="cpu", tile_size=128, tile_overlap=48).run(image).astype(np.float64)
    diff = np.abs(whole - tiled)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 8, (diff.mean(), np.percentile(diff, 99))


def test_max_side_and_preserve_color(cartoonizer):
    image = photo(200, 120)
    small = cartoonizer.run(image, max_side=64)
    assert small.shape == image.shape
    kept = cartoonizer.run(image, preserve_color=True)
    chroma_in = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
    chroma_out = cv2.cvtColor(kept, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
    assert np.abs(chroma_in - chroma_out).mean() < 2
    plain = cv2.cvtColor(cartoonizer.run(image), cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
    assert np.abs(chroma_in - plain).mean() > np.abs(chroma_in - chroma_out).mean()


def test_thread_safety(cartoonizer):
    images = [photo(40 + 4 * i, 48, i) for i in range(8)]
    serial = [cartoonizer.run(image) for image in images]
    results = [None] * 8
    errors = []

    def work(i):
        try:
            for _ in range(3):
                results[i] = cartoonizer.run(images[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for a, b in zip(serial, results):
        assert np.array_equal(a, b)


BAD_IMAGES = [
    (None, "got None"),
    ("photo.jpg", "got str"),
    (np.zeros((0, 10, 3), np.uint8), r"non-empty image, got shape \(0, 10, 3\)"),
    (np.zeros(10, np.uint8), r"got shape \(10,\)"),
    (np.zeros((2, 8, 8, 3), np.uint8), r"got shape \(2, 8, 8, 3\)"),
    (np.zeros((8, 8, 2), np.uint8), r"HxWx4 image, got shape \(8, 8, 2\)"),
    (np.zeros((3, 16, 16), np.uint8), "channels-first arrays must be transposed"),
    (np.zeros((8, 8, 3), np.float32), r"uint8 image, got dtype float32 \(scale \[0, 1\] floats"),
    (np.zeros((8, 8, 3), np.uint16), "uint8 image, got dtype uint16"),
    (np.zeros((8, 8, 3), np.int64), "uint8 image, got dtype int64"),
    (np.zeros((8, 8, 3), bool), "uint8 image, got dtype bool"),
]


@pytest.mark.parametrize("image, message", BAD_IMAGES)
def test_bad_images_are_clear_errors(cartoonizer, image, message):
    with pytest.raises(InvalidInput, match=message):
        cartoonizer.run(image)


def test_bad_item_in_a_batch_names_its_index(cartoonizer):
    with pytest.raises(InvalidInput, match="image 1 of the batch: expected a uint8 image"):
        cartoonizer.run([photo(8, 8), np.zeros((8, 8, 3), np.float64)])


def test_huge_images_are_refused_before_any_work(cartoonizer, monkeypatch):
    monkeypatch.setattr(im, "MAX_PIXELS", 1000)
    with pytest.raises(InvalidInput, match="larger than the 1,000-pixel limit"):
        cartoonizer.run(np.zeros((40, 40, 3), np.uint8))


def _onnx_with(tmp_path, name, inputs, outputs):
    node = helper.make_node("Identity", [inputs[0].name], [outputs[0].name])
    graph = helper.make_graph([node], "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_bad_models_are_clear_errors(tmp_path, tiny_onnx):
    with pytest.raises(ModelError, match="does not exist"):
        Cartoonizer(tmp_path / "missing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match="is empty"):
        Cartoonizer(tmp_path / "empty.onnx")
    (tmp_path / "corrupt.onnx").write_bytes(tiny_onnx.read_bytes()[:300])
    with pytest.raises(ModelError, match="cannot load it as an ONNX model"):
        Cartoonizer(tmp_path / "corrupt.onnx", backend="cpu")
    (tmp_path / "text.onnx").write_text("hello")
    with pytest.raises(ModelError, match="cannot load it as an ONNX model"):
        Cartoonizer(tmp_path / "text.onnx", backend="cpu")
    wrong_io = {
        "gray.onnx": (TensorProto.FLOAT, 1, r"expected a float Nx3xHxW input, got tensor\(float\) with shape"),
        "ints.onnx": (TensorProto.INT64, 3, r"got tensor\(int64\)"),
    }
    for name, (elem_type, channels, message) in wrong_io.items():
        shape = ["n", channels, "h", "w"]
        path = _onnx_with(
            tmp_path, name,
            [helper.make_tensor_value_info("x", elem_type, shape)],
            [helper.make_tensor_value_info("y", elem_type, shape)],
        )  # fmt: skip
        with pytest.raises(ModelError, match=message):
            Cartoonizer(path, backend="cpu")
    with pytest.raises(ModelError, match="is a fp32 model, but precision='int8'.*--precision int8"):
        Cartoonizer(tiny_onnx, backend="cpu", precision="int8")


def test_bad_arguments_are_clear_errors(tiny_onnx):
    with pytest.raises(InvalidInput, match="unknown backend 'tpu'"):
        Cartoonizer(tiny_onnx, backend="tpu")
    with pytest.raises(InvalidInput, match="precision must be one of"):
        Cartoonizer(tiny_onnx, precision="fp8")
    with pytest.raises(InvalidInput, match="channel_order must be 'bgr' or 'rgb'"):
        Cartoonizer(tiny_onnx, channel_order="hsv")
    with pytest.raises(InvalidInput, match="tile_size must be a multiple of 4"):
        Cartoonizer(tiny_onnx, tile_size=101)
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailable, match="no CUDAExecutionProvider"):
            Cartoonizer(tiny_onnx, backend="onnxruntime-cuda", strict=True)


def test_sdk_never_imports_torch(tiny_onnx):
    code = (
        "import sys, numpy as np\n"
        "from cartoongan import Cartoonizer\n"
        f"out = Cartoonizer({str(tiny_onnx)!r}).run(np.full((20, 30, 3), 99, np.uint8))\n"
        "assert out.shape == (20, 30, 3) and out.dtype == np.uint8\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cli_keeps_going_past_a_bad_file(tiny_onnx, tmp_path, capsys):
    from cartoongan.cli import main

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.jpg"), photo(30, 40))
    cv2.imwrite(str(src / "sub" / "b.png"), photo(20, 20))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    code = main(["cartoonize", str(src), "-o", str(out), "--model", str(tiny_onnx), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "a.jpg").exists() and (out / "sub" / "b.png").exists() and not (out / "broken.jpg").exists()
    assert "broken.jpg: cannot be decoded as an image" in captured.err
    assert "wrote 2 image(s)" in captured.out and "1 failed" in captured.out

    before = (out / "a.jpg").stat().st_mtime_ns
    code = main(["cartoonize", str(src / "a.jpg"), "-o", str(out), "--model", str(tiny_onnx), "--no-progress"])
    assert code == 0 and (out / "a.jpg").stat().st_mtime_ns == before
    assert "skipped 1 existing (use --overwrite)" in capsys.readouterr().out
    code = main(["cartoonize", str(src / "a.jpg"), "-o", str(tmp_path / "single.png"), "--model", str(tiny_onnx),
                 "--no-progress", "--overwrite"])  # fmt: skip
    assert code == 0 and cv2.imread(str(tmp_path / "single.png")).shape == (30, 40, 3)
    assert main(["cartoonize", str(tmp_path / "nothing*.jpg"), "-o", str(out), "--model", str(tiny_onnx)]) == 1
    assert "no such file, folder or matching glob" in capsys.readouterr().err


def test_openvino_backend_matches_onnxruntime(tiny_onnx, cartoonizer):
    pytest.importorskip("openvino")
    with Cartoonizer(tiny_onnx, backend="openvino") as ov:
        assert ov.backend == "openvino" and ov.providers == ["openvino"]
        for image in (photo(37, 53), photo(64, 64, 1)):
            assert np.abs(ov.run(image).astype(int) - cartoonizer.run(image)).max() <= 2
        assert [o.shape for o in ov.run([photo(32, 32), photo(32, 32, 2)])] == [(32, 32, 3)] * 2
