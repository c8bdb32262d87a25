"""Distribution distances on feature vectors, and simple style statistics of images (numpy + OpenCV only).

FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) compare two sets of
feature vectors, usually InceptionV3 pool features (see `inception.py`).
"""

from __future__ import annotations

import cv2
import numpy as np

from cartoongan.errors import InvalidInput


def _check_features(a: np.ndarray, b: np.ndarray, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidInput(f"expected two NxD feature arrays of the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < minimum:
        raise InvalidInput(f"need at least {minimum} feature vectors per set, got {len(a)} and {len(b)}")
    return a, b


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b,
    which are real and non-negative for covariance matrices (tiny negative
    round-off is clipped), so no matrix square root is needed.
    """
    a, b = _check_features(a, b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b).real
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 20, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and std over random subsets."""
    a, b = _check_features(a, b)
    size = min(subset_size, len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        values.append(off_diagonal - 2 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


def edge_density(bgr: np.ndarray) -> float:
    """Share of pixels on a Canny edge (cartoons: clear lines, few textures)."""
    return float((cv2.Canny(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 100, 200) > 0).mean())


def flat_share(bgr: np.ndarray, window: int = 5, threshold: float = 3.0) -> float:
    """Share of pixels whose window x window neighbourhood is flat (gray std below `threshold` levels)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (window, window))
    variance = np.maximum(cv2.blur(gray * gray, (window, window)) - mean * mean, 0)
    return float((np.sqrt(variance) < threshold).mean())


def contour_ink(photo_bgr: np.ndarray, image_bgr: np.ndarray) -> float | None:
    """Gray levels by which `image` darkens the photo's contours against their surroundings.

    The contours are where a cartoonist would ink the photo (`PhotoLines`); the
    surroundings, a band 2 to 4 pixels away. Their gray difference (band minus
    contour) in `image` minus the same difference in the photo: 0 for the photo
    itself, positive where the contours are drawn as dark lines, negative for light
    halos. None when the photo has no contours.
    """
    from cartoongan.training.data import PhotoLines

    if photo_bgr.shape != image_bgr.shape:
        raise InvalidInput(f"contour_ink needs a photo and its stylized image of one shape, got "
                           f"{photo_bgr.shape} and {image_bgr.shape}")  # fmt: skip
    lines = PhotoLines()(np.ascontiguousarray(photo_bgr[:, :, ::-1])).astype(np.uint8)
    if not lines.any():
        return None
    on, near = lines > 0, cv2.dilate(lines, np.ones((3, 3), np.uint8)) > 0
    band = (cv2.dilate(lines, np.ones((9, 9), np.uint8)) > 0) & ~near

    def contrast(bgr: np.ndarray) -> float:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return float(gray[band].mean() - gray[on].mean())

    return contrast(image_bgr) - contrast(photo_bgr)
