import numpy as np
import pytest

from cartoongan.errors import InvalidInput
from cartoongan.evaluation.baseline import opencv_cartoon
from cartoongan.evaluation.metrics import edge_density, flat_share, frechet_distance, kernel_inception_distance
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


def test_baseline_keeps_shape_and_dtype_and_flattens():
    rng = np.random.default_rng(0)
    photo = smooth_photo(rng, 90, 70)
    cartoon = opencv_cartoon(photo)
    assert cartoon.shape == photo.shape and cartoon.dtype == np.uint8
    assert len(np.unique(cartoon.reshape(-1, 3), axis=0)) <= 9  # 8 colours + black lines
    assert flat_share(cartoon) > flat_share(photo)
    with pytest.raises(InvalidInput, match="HxWx3 uint8 BGR image, got float32"):
        opencv_cartoon(photo.astype(np.float32))
