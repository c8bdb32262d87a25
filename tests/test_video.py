from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from cartoongan.cli import main  # noqa: E402


def make_clip(path, frames=12, fps=8, audio=True, size=(48, 64)):
    """A short clip whose frames differ, with a 440 Hz tone when `audio`."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        if audio:
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for i in range(frames):
            image = np.full((*size, 3), (i * 20) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio:
            t = np.arange(16000 * frames // fps) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, samples.shape[1], 1024):
                piece = np.ascontiguousarray(samples[:, start : start + 1024])
                chunk = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))


def probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        count = sum(1 for _ in container.decode(video))
        return count, float(video.average_rate), len(container.streams.audio)


def test_video_keeps_frame_count_fps_and_audio(tiny_onnx, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    assert probe(clip) == (12, 8.0, 1)
    out = tmp_path / "cartoon.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(tiny_onnx), "--batch", "3", "--no-progress"]) == 0
    assert probe(out) == (12, 8.0, 1)
    assert "12 frames at 8.000 fps" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))

    trimmed = tmp_path / "trimmed.mkv"
    assert main(["video", str(clip), "-o", str(trimmed), "--model", str(tiny_onnx), "--start", "0.5",
                 "--end", "1.0", "--no-progress"]) == 0  # fmt: skip
    assert probe(trimmed)[:2] == (4, 8.0)
    assert "has no audio" in capsys.readouterr().err
    assert main(["video", str(clip), "-o", str(out), "--model", str(tiny_onnx)]) == 1  # exists
    assert "pass --overwrite" in capsys.readouterr().err


def test_bad_videos_are_clear_errors(tiny_onnx, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, audio=False)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: len(clip.read_bytes()) // 3])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for bad in (truncated, text, tmp_path / "missing.mp4"):
        out = tmp_path / f"out_{bad.stem}.mp4"
        assert main(["video", str(bad), "-o", str(out), "--model", str(tiny_onnx), "--no-progress"]) == 1
        assert "error:" in capsys.readouterr().err
        assert not out.exists()
    assert main(["video", str(clip), "-o", str(tmp_path / "x.gif"), "--model", str(tiny_onnx)]) == 1
    assert "expected one of" in capsys.readouterr().err


def test_temporal_smoothing_reduces_flicker_without_smearing_motion():
    from cartoongan.sdk.video import TemporalSmoother, flicker

    rng = np.random.default_rng(0)
    inputs, outputs = [], []
    for t in range(20):
        frame = np.full((32, 32, 3), 100, np.uint8)
        frame[:, t : t + 4] = 250  # a moving bar; the rest is still
        inputs.append(frame)
        cartoon = np.clip(frame.astype(int) + rng.integers(-20, 21, frame.shape), 0, 255).astype(np.uint8)
        outputs.append(cartoon)  # a flickering "model"
    smoother = TemporalSmoother(0.7)
    smoothed = [smoother(i, o) for i, o in zip(inputs, outputs)]
    assert flicker(inputs, smoothed) < 0.7 * flicker(inputs, outputs)
    moving = (inputs[10] != inputs[9]).any(axis=2)
    assert np.array_equal(smoothed[10][moving], outputs[10][moving])  # moving pixels are the new output
    with pytest.raises(Exception, match="strength must be in"):
        TemporalSmoother(1.0)


def test_image_sequence_in_natural_order(tiny_onnx, tmp_path):
    import cv2

    from cartoongan.sdk.video import image_sequence

    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (1, 2, 10, 3):
        cv2.imwrite(str(folder / f"frame_{i}.png"), np.full((32, 48, 3), i * 20, np.uint8))
    assert [p.name for p in image_sequence(folder)] == ["frame_1.png", "frame_2.png", "frame_3.png", "frame_10.png"]
    out = tmp_path / "seq.mp4"
    assert main(["video", str(folder), "-o", str(out), "--model", str(tiny_onnx), "--fps", "12", "--no-progress"]) == 0
    assert probe(out) == (4, 12.0, 0)
    cv2.imwrite(str(folder / "frame_11.png"), np.zeros((16, 16, 3), np.uint8))
    assert main(["video", str(folder), "-o", str(tmp_path / "bad.mp4"), "--model", str(tiny_onnx)]) == 1
    assert not (tmp_path / "bad.mp4").exists()


def test_camera_input_with_a_fake_camera(tiny_onnx, tmp_path, monkeypatch):
    import cv2

    class FakeCamera:
        def __init__(self, index):
            self.left = 6 if index == 0 else 0

        def isOpened(self):
            return self.left > 0

        def get(self, prop):
            return 15.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def read(self):
            self.left -= 1
            return self.left >= 0, np.full((24, 32, 3), 40 * self.left % 256, np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    out = tmp_path / "cam.mp4"
    assert main(["video", "--camera", "0", "-o", str(out), "--model", str(tiny_onnx), "--no-progress"]) == 0
    assert probe(out) == (6, 15.0, 0)
    assert main(["video", "--camera", "3", "-o", str(tmp_path / "none.mp4"), "--model", str(tiny_onnx)]) == 1
    assert main(["video", "-o", str(tmp_path / "x.mp4"), "--model", str(tiny_onnx)]) == 1
