"""Video files in, stylized video files out, with PyAV (FFmpeg): same frame rate, frame count and audio.

    cartoongan video clip.mp4 -o cartoon.mp4 [--batch 4] [--max-side 720] [--start 2] [--end 10]

Frames are decoded in a thread, stylized in batches (`Cartoonizer.stream`) and
encoded as they come; the audio packets are copied unchanged. The output is
written to a temporary file beside the target and renamed at the end, so an
interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cartoongan._deps import require
from cartoongan._io import atomic_path
from cartoongan.errors import InvalidInput

FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
CODECS = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4"}


class TemporalSmoother:
    """Cheap flicker reduction: blend each output with the previous one where the *input* did not change.

    Static pixels (input change below `threshold` levels) take `strength` of the
    previous output; moving pixels keep the new output, so motion is not smeared.
    """

    def __init__(self, strength: float = 0.6, threshold: float = 12.0):
        if not 0.0 <= strength < 1.0:
            raise InvalidInput(f"smoothing strength must be in [0, 1), got {strength}")
        self.strength, self.threshold = strength, threshold
        self.previous_input: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, cartoon: np.ndarray) -> np.ndarray:
        if self.previous_input is None or self.previous_input.shape != frame.shape or self.strength == 0:
            result = cartoon
        else:
            change = np.abs(frame.astype(np.int16) - self.previous_input).max(axis=2, keepdims=True)
            weight = self.strength * (change < self.threshold)
            blended = cartoon * (1 - weight) + self.previous_output * weight
            result = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        self.previous_input, self.previous_output = frame.astype(np.int16), result.astype(np.float32)
        return result


def flicker(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean absolute frame-to-frame change of the output relative to that of the input (1 = as much)."""
    def mean_change(frames: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b.astype(np.int16) - a).mean() for a, b in zip(frames, frames[1:])]))

    if len(inputs) < 2 or len(inputs) != len(outputs):
        raise InvalidInput("flicker needs two equally long sequences of at least 2 frames")
    return mean_change(outputs) / max(mean_change(inputs), 1e-6)


def _open_input(path: Path):
    av = require("av", "video files (pip install av)")
    if not path.is_file():
        raise InvalidInput(f"video {path} does not exist")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be opened as a video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise InvalidInput(f"{path}: holds no video stream")
    return container


def _frames(container, start: float, end: float | None) -> Iterator[np.ndarray]:
    """BGR frames with start <= time < end (seconds)."""
    av = require("av", "video files")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            if t < start:
                continue
            if end is not None and t >= end:
                return
            yield frame.to_ndarray(format="bgr24")
    except av.FFmpegError as exc:
        raise InvalidInput(f"{container.name}: the video is corrupt or truncated ({exc})") from None


def image_sequence(folder: str | Path) -> list[Path]:
    """The images of a folder, in natural order (frame_2 before frame_10)."""
    import re

    from cartoongan.sdk.cli import IMAGE_EXTENSIONS

    folder = Path(folder)
    paths = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not paths:
        raise InvalidInput(f"{folder}: no images for an image sequence")

    def natural(path: Path) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    return sorted(paths, key=natural)


def _sequence_frames(paths: list[Path]) -> Iterator[np.ndarray]:
    from cartoongan._io import read_image

    size = None
    for path in paths:
        image = read_image(path)
        if image is None:
            raise InvalidInput(f"{path}: cannot be decoded as an image")
        if size is not None and image.shape != size:
            raise InvalidInput(f"{path}: {image.shape[1]}x{image.shape[0]}, but the sequence is {size[1]}x{size[0]}")
        size = image.shape
        yield image


def camera_frames(index: int, seconds: float | None = None) -> tuple[Iterator[np.ndarray], float]:
    """(frames, fps) from camera `index` until it stops delivering, `seconds` pass, or the caller stops."""
    import time

    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise InvalidInput(f"camera {index} cannot be opened")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 1 <= fps <= 240 else 30.0

    def frames() -> Iterator[np.ndarray]:
        started = time.monotonic()
        try:
            while seconds is None or time.monotonic() - started < seconds:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    return frames(), fps


def stylize_video(
    source: str | Path | tuple[Iterator[np.ndarray], float],
    target: str | Path,
    stream_frames: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]],
    start: float = 0.0,
    end: float | None = None,
    on_frame: Callable[[], None] | None = None,
    smoothing: float = 0.0,
    fps: float = 25.0,
) -> dict:
    """Decode `source` (a video file, or a folder of images at `fps`), map its frames through
    `stream_frames`, encode to `target` with the audio copied."""
    av = require("av", "video files (pip install av)")
    source = source if isinstance(source, tuple) else Path(source)
    target = Path(target)
    container_format = FORMATS.get(target.suffix.lower())
    if container_format is None:
        raise InvalidInput(f"output {target}: expected one of {sorted(FORMATS)}")
    if end is not None and end <= start:
        raise InvalidInput(f"--end ({end}) must be after --start ({start})")
    if isinstance(source, tuple):  # (frames, fps) from a camera
        inp, in_audio = None, None
        frames, camera_fps = source
        rate = Fraction(camera_fps).limit_denominator(1001)
    elif source.is_dir():
        paths = image_sequence(source)
        first, last = round(start * fps), None if end is None else round(end * fps)
        inp, rate, in_audio = None, Fraction(fps).limit_denominator(1001), None
        frames = _sequence_frames(paths[first:last])
    else:
        inp = _open_input(source)
        in_video = inp.streams.video[0]
        rate = in_video.average_rate or in_video.guessed_rate or Fraction(25)
        in_audio = inp.streams.audio[0] if inp.streams.audio and start == 0 and end is None else None
        frames = _frames(inp, start, end)
    try:
        with atomic_path(target) as tmp:
            out = av.open(str(tmp), mode="w", format=container_format)
            try:
                out_video = out.add_stream(CODECS[container_format], rate=rate)
                out_video.pix_fmt = "yuv420p"
                out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
                count = 0
                smoother = TemporalSmoother(smoothing)
                recent: deque[np.ndarray] = deque()  # inputs waiting for their outputs (the stream keeps order)

                def remember(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
                    for f in frames:
                        recent.append(f)
                        yield f

                for cartoon in stream_frames(remember(frames)):
                    cartoon = smoother(recent.popleft(), cartoon)
                    if count == 0:  # the encoder's size is fixed by the first frame
                        out_video.height, out_video.width = cartoon.shape[:2]
                    frame = av.VideoFrame.from_ndarray(cartoon, format="bgr24")
                    frame.pts = count
                    frame.time_base = Fraction(1) / rate
                    out.mux(out_video.encode(frame))
                    count += 1
                    if on_frame:
                        on_frame()
                if count == 0:
                    raise InvalidInput(f"{target}: no frame to write (empty input or range)")
                out.mux(out_video.encode(None))
                if out_audio is not None:  # second pass: copy the audio packets unchanged
                    inp.seek(0)
                    for packet in inp.demux(in_audio):
                        if packet.dts is not None:
                            packet.stream = out_audio
                            out.mux(packet)
            finally:
                out.close()
    finally:
        if inp is not None:
            inp.close()
    return {"frames": count, "fps": float(rate), "audio": out_audio is not None}
