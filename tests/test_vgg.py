import h5py
import numpy as np
import pytest
import torch

from cartoongan.errors import InvalidInput, MissingWeights
from cartoongan.training.vgg import CAFFE_MEAN_BGR, KERAS_SCALE, VGGFeatures, build_vgg, load_keras_h5


def keras_conv_relu(x_hwc: np.ndarray, kernel_hwio: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What a Keras Conv2D(3x3, padding='same') + ReLU computes, written out in numpy."""
    h, w, _ = x_hwc.shape
    padded = np.pad(x_hwc, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel_hwio.shape[3]))
    for i in range(3):
        for j in range(3):
            out += padded[i : i + h, j : j + w] @ kernel_hwio[i, j]
    return np.maximum(out + bias, 0)


def write_keras_h5(path, layers: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The layout of Keras' vgg*_weights_tf_dim_ordering_tf_kernels_notop.h5."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_1", *(name.encode() for name in layers)])
        f.create_group("input_1")
        for name, (kernel, bias) in layers.items():
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()])
            g.create_dataset(f"{name}_W_1:0", data=kernel)
            g.create_dataset(f"{name}_b_1:0", data=bias)


def test_keras_h5_loads_to_the_same_features_keras_computes(tmp_path):
    rng = np.random.default_rng(0)
    k1, b1 = rng.normal(0, 0.05, (3, 3, 3, 64)).astype(np.float32), rng.normal(0, 1, 64).astype(np.float32)
    k2, b2 = rng.normal(0, 0.05, (3, 3, 64, 64)).astype(np.float32), rng.normal(0, 1, 64).astype(np.float32)
    path = tmp_path / "tiny_vgg19_notop.h5"
    write_keras_h5(path, {"block1_conv1": (k1, b1), "block1_conv2": (k2, b2)})

    model = VGGFeatures("vgg19", n_layers=4)  # conv1_1, relu, conv1_2, relu
    load_keras_h5(model, path)

    rgb = rng.integers(0, 256, (9, 7, 3)).astype(np.float32)
    keras_input = rgb[:, :, ::-1] - np.array(CAFFE_MEAN_BGR, np.float32)  # BGR, 0-255, minus the Caffe mean
    expected = keras_conv_relu(keras_conv_relu(keras_input, k1, b1), k2, b2)

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1  # what the trainer feeds: RGB in [-1, 1]
    with torch.no_grad():
        got = model(x)[0].permute(1, 2, 0).double().numpy() * KERAS_SCALE
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_keras_h5_with_wrong_shapes_is_refused(tmp_path):
    path = tmp_path / "wrong.h5"
    write_keras_h5(path, {"block1_conv1": (np.zeros((3, 3, 3, 32), np.float32), np.zeros(32, np.float32))})
    with pytest.raises(InvalidInput, match=r"block1_conv1.*\(32, 3, 3, 3\).*expected \(64, 3, 3, 3\)"):
        load_keras_h5(VGGFeatures("vgg19", n_layers=2), path)
    with pytest.raises(InvalidInput, match="has 1 convolutions, vgg19 needs 12"):
        load_keras_h5(VGGFeatures("vgg19"), path)


@pytest.mark.parametrize("arch, layers", [("vgg16", 24), ("vgg19", 26)])
def test_torchvision_state_dict_round_trip(tmp_path, arch, layers):
    torch.manual_seed(0)
    source = VGGFeatures(arch)
    assert len(source.features) == layers
    # torchvision files also hold the classifier; only `features.*` below the cut is used
    state = {**source.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}
    state.pop("mean"), state.pop("std")
    path = tmp_path / f"{arch}-test.pth"
    torch.save(state, path)

    loaded = build_vgg(arch, path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded(x), source(x))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_torchvision_file_of_the_other_vgg_is_refused(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save(VGGFeatures("vgg16").state_dict(), path)
    with pytest.raises(InvalidInput, match=r"expected a torchvision vgg19 state dict, but keys \['features.16.weight'"):
        build_vgg("vgg19", path)
    vgg19_shapes = {k: v for k, v in VGGFeatures("vgg19").state_dict().items() if k not in ("mean", "std")}
    vgg19_shapes["features.0.weight"] = torch.zeros(64, 1, 3, 3)  # e.g. a grayscale-input model
    torch.save(vgg19_shapes, path)
    with pytest.raises(InvalidInput, match=r"features.0.weight has shape \(64, 1, 3, 3\), expected \(64, 3, 3, 3\)"):
        build_vgg("vgg19", path)


def test_corrupt_weights_file_is_refused(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(InvalidInput, match="not a readable torch state dict"):
        build_vgg("vgg19", path)


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv("CARTOONGAN_VGG_WEIGHTS", raising=False)
    with pytest.raises(MissingWeights, match="vgg16-397923af.pth"):
        build_vgg("vgg16")
    with pytest.raises(MissingWeights, match="does not exist"):
        build_vgg("vgg19", tmp_path / "nope.pth")


def test_random_weights_only_when_asked():
    model = build_vgg("vgg16", random_init=True)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 2, 2)  # through pool4: 1/16


def test_auto_backbone_prefers_vgg16_and_finds_local_weights(tmp_path, monkeypatch):
    from cartoongan.training.vgg import resolve_backbone

    monkeypatch.delenv("CARTOONGAN_VGG_WEIGHTS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no user caches
    with pytest.raises(MissingWeights, match="vgg16-397923af.pth"):
        resolve_backbone("auto")
    (tmp_path / "weights").mkdir()
    keras19 = tmp_path / "weights" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras19.write_bytes(b"x")
    assert resolve_backbone("auto") == ("vgg19", str(keras19))
    tv16 = tmp_path / "weights" / "vgg16-397923af.pth"
    tv16.write_bytes(b"x")
    assert resolve_backbone("auto") == ("vgg16", str(tv16))  # the design's choice when available
    assert resolve_backbone("vgg19") == ("vgg19", str(keras19))
    assert resolve_backbone("auto", str(keras19)) == ("vgg19", str(keras19))
    with pytest.raises(InvalidInput, match="cannot tell whether .*mystery.pth holds VGG16 or VGG19"):
        resolve_backbone("auto", str(tmp_path / "mystery.pth"))
    assert resolve_backbone("auto", "random") == ("vgg19", "random")
