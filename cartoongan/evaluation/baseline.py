"""The classical reference: what most "cartoonizer" packages on PyPI do, with OpenCV alone.

Edge-preserving smoothing (repeated bilateral filtering at half resolution),
colour quantisation (k-means in colour space), and dark lines from an adaptive
threshold of the median-blurred gray image.
"""

from __future__ import annotations

import cv2
import numpy as np

from cartoongan.errors import InvalidInput


def opencv_cartoon(bgr: np.ndarray, colors: int = 8, bilateral_passes: int = 5, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 BGR -> HxWx3 uint8 BGR cartoon."""
    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        got = f"{bgr.dtype} {bgr.shape}" if isinstance(bgr, np.ndarray) else type(bgr).__name__
        raise InvalidInput(f"expected an HxWx3 uint8 BGR image, got {got}")
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    for _ in range(bilateral_passes):
        small = cv2.bilateralFilter(small, d=9, sigmaColor=9, sigmaSpace=7)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    pixels = smooth.reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    k = max(1, min(colors, len(np.unique(pixels, axis=0))))
    _, labels, centers = cv2.kmeans(pixels, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    quantised = centers.astype(np.uint8)[labels.ravel()].reshape(h, w, 3)

    gray = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
    block = max(3, (min(h, w) // 64) * 2 + 1)  # odd, grows with the image
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 7)
    return cv2.bitwise_and(quantised, quantised, mask=edges)
