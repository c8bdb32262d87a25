"""Unpaired photo/cartoon data, the paper's edge smoothing (cached on disk), and video frame extraction.

Random choices (which cartoon goes with a photo, crops, flips) are drawn from a
generator seeded by (seed, epoch, index), so the data a step sees does not
depend on worker processes or on whether the run was resumed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cartoongan._io import read_image, sha256_file, write_image
from cartoongan.errors import InvalidInput

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


# --------------------------------------------------------------------------- files


def list_images(folder: str | Path) -> list[Path]:
    """Every jpg/png/webp below `folder`, sorted; a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"image folder {folder} does not exist or is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise InvalidInput(f"image folder {folder} holds no images; expected files ending in {IMAGE_EXTENSIONS}")
    return paths


def read_rgb(path: str | Path) -> np.ndarray | None:
    """HxWx3 uint8 RGB (grayscale expanded, alpha dropped), or None if the file cannot be decoded."""
    image = read_image(path, cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def atomic_write_image(path: str | Path, image_rgb: np.ndarray) -> None:
    """Encode by extension and write atomically (temporary file, then rename)."""
    write_image(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))


# --------------------------------------------------------------------------- edge smoothing


@dataclass(frozen=True)
class EdgeSmoothing:
    """The paper's negative examples: cartoons whose clear edges are blurred away.

    Canny finds the edges, dilation widens them into a band, and only pixels in
    that band are replaced by their Gaussian-blurred value.
    """

    canny_low: int = 100
    canny_high: int = 200
    dilate: int = 5
    blur: int = 5

    def edge_mask(self, rgb: np.ndarray) -> np.ndarray:
        edges = cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), self.canny_low, self.canny_high)
        return cv2.dilate(edges, np.ones((self.dilate, self.dilate), np.uint8)) > 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = self.edge_mask(rgb)
        blurred = cv2.GaussianBlur(rgb, (self.blur, self.blur), 0)
        out = rgb.copy()
        out[mask] = blurred[mask]
        return out

    def key(self) -> str:
        return f"c{self.canny_low}-{self.canny_high}_d{self.dilate}_b{self.blur}"


@dataclass(frozen=True)
class PhotoLines:
    """Where a cartoonist would ink a photo: the contours of its large shapes, not its textures.

    A median blur wipes out fine texture (grass, fur, gravel) but keeps the
    borders of large regions, which Canny then traces as one-pixel lines,
    widened to `width` pixels.
    """

    blur: int = 7
    canny_low: int = 60
    canny_high: int = 150
    width: int = 1

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """HxW bool mask of contour pixels."""
        gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), self.blur)
        edges = cv2.Canny(gray, self.canny_low, self.canny_high)
        if self.width > 1:
            edges = cv2.dilate(edges, np.ones((self.width, self.width), np.uint8))
        return edges > 0


def prepare_smoothed(paths: list[Path], cache_dir: Path, smoothing: EdgeSmoothing) -> list[tuple[Path, Path]]:
    """Edge-smooth every readable cartoon once; return (cartoon, smoothed) pairs.

    Cache files are named by the source file's content hash and the smoothing
    parameters, so an edited source is recomputed and a stale entry never used.
    Unreadable cartoons are skipped and counted in one warning.
    """
    cache_dir = Path(cache_dir) / smoothing.key()
    cache_dir.mkdir(parents=True, exist_ok=True)
    pairs, unreadable = [], []
    for path in paths:
        target = cache_dir / f"{sha256_file(path)[:24]}.png"
        if target.exists():
            pairs.append((path, target))
            continue
        rgb = read_rgb(path)
        if rgb is None:
            unreadable.append(path)
            continue
        atomic_write_image(target, smoothing(rgb))
        pairs.append((path, target))
    _warn_unreadable(unreadable, "cartoon")
    return pairs


def _warn_unreadable(paths: list[Path], kind: str) -> None:
    if paths:
        shown = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        log.warning("skipped %d unreadable %s image(s): %s", len(paths), kind, shown)


def split_holdout(paths: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, holdout): a file is held out when the hash of its name falls below `fraction`.

    The split depends only on file names, so it is the same on every machine and
    does not move when photos are added or removed.
    """
    train, holdout = [], []
    for path in paths:
        bucket = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (holdout if bucket < fraction else train).append(path)
    return train, holdout


def readable_images(paths: list[Path], kind: str) -> list[Path]:
    """The paths that decode; the others are counted in one warning."""
    good, bad = [], []
    for path in paths:
        (good if read_rgb(path) is not None else bad).append(path)
    _warn_unreadable(bad, kind)
    return good


# --------------------------------------------------------------------------- crops


def fit_for_crop(image: np.ndarray, crop: int, short_side: int = 0) -> np.ndarray:
    """Resize so the short side is `short_side` (if set), and never below `crop`."""
    h, w = image.shape[:2]
    target = max(short_side or min(h, w), crop)
    if target == min(h, w):
        return image
    scale = target / min(h, w)
    size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def random_crop(images: list[np.ndarray], crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random crop and horizontal flip applied to images of equal size."""
    h, w = images[0].shape[:2]
    y = int(rng.integers(0, h - crop + 1))
    x = int(rng.integers(0, w - crop + 1))
    flip = bool(rng.integers(0, 2))
    out = []
    for image in images:
        patch = image[y : y + crop, x : x + crop]
        out.append(np.ascontiguousarray(patch[:, ::-1] if flip else patch))
    return out


def center_crop(image: np.ndarray, crop: int) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = (h - crop) // 2, (w - crop) // 2
    return image[y : y + crop, x : x + crop]


def to_tensor(image: np.ndarray):
    """HxWx3 uint8 RGB -> 3xHxW float32 in [-1, 1]."""
    import torch

    return torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1.0)


class UnpairedDataset:
    """Item i: photo i, a randomly drawn cartoon, that cartoon's edge-smoothed copy, and the photo's contour mask.

    The mask (1xHxW, 0 or 1) is traced by `lines` on the uint8 crop, in the loader's
    workers; it is an empty tensor when `lines` is None (runs without a line loss).
    """

    def __init__(
        self,
        photos: list[Path],
        cartoon_pairs: list[tuple[Path, Path]],
        crop: int,
        short_side: int = 0,
        seed: int = 0,
        lines: PhotoLines | None = None,
    ):
        if not photos:
            raise InvalidInput("no readable photos")
        if not cartoon_pairs:
            raise InvalidInput("no readable cartoons")
        self.photos = photos
        self.cartoon_pairs = cartoon_pairs
        self.crop = crop
        self.short_side = short_side
        self.seed = seed
        self.lines = lines
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.photos)

    def _load(self, path: Path) -> np.ndarray:
        image = read_rgb(path)
        if image is None:  # it was readable when the run started
            raise InvalidInput(f"{path} can no longer be decoded")
        return fit_for_crop(image, self.crop, self.short_side)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        (photo,) = random_crop([self._load(self.photos[index])], self.crop, rng)
        cartoon_path, smoothed_path = self.cartoon_pairs[int(rng.integers(len(self.cartoon_pairs)))]
        cartoon, smoothed = random_crop([self._load(cartoon_path), self._load(smoothed_path)], self.crop, rng)
        import torch

        mask = torch.empty(0) if self.lines is None else torch.from_numpy(self.lines(photo)).float().unsqueeze(0)
        return to_tensor(photo), to_tensor(cartoon), to_tensor(smoothed), mask


# --------------------------------------------------------------------------- video frames


def extract_frames(
    video: str | Path, out_dir: str | Path, every: float = 1.0, min_difference: float = 6.0, prefix: str = ""
) -> tuple[int, int]:
    """Save one frame every `every` seconds of `video` as PNG, skipping near-duplicates.

    A frame is a near-duplicate when the mean absolute difference of its 64x36
    grayscale thumbnail to the last saved one is below `min_difference` (0-255).
    Returns (saved, skipped_as_duplicates).
    """
    if every <= 0:
        raise InvalidInput(f"--every must be a positive number of seconds, got {every}")
    video = Path(video)
    if not video.is_file():
        raise InvalidInput(f"video {video} does not exist")
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise InvalidInput(f"{video}: cannot be opened as a video (unsupported format or corrupt file)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not fps or not np.isfinite(fps) or fps <= 0:
            fps = 25.0
            log.warning("%s reports no frame rate; assuming %.0f fps", video, fps)
        step = max(1, round(every * fps))
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        prefix = prefix or video.stem
        saved = skipped = frame_index = 0
        last_thumb = None
        while capture.grab():
            if frame_index % step == 0:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA)
                    diff = np.inf if last_thumb is None else np.abs(thumb.astype(np.float32) - last_thumb).mean()
                    if diff < min_difference:
                        skipped += 1
                    else:
                        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                        atomic_write_image(out_dir / f"{prefix}_{frame_index:07d}.png", rgb)
                        last_thumb = thumb.astype(np.float32)
                        saved += 1
            frame_index += 1
    finally:
        capture.release()
    if frame_index == 0:
        raise InvalidInput(f"{video}: no frame could be decoded (unsupported codec or corrupt file)")
    return saved, skipped
