import threading
import time

import numpy as np
import pytest

from cartoongan import Cartoonizer
from cartoongan.sdk.stream import stream


def numbered_frames(count, shape=(16, 24, 3)):
    """Frames that carry their own index in every pixel."""
    for i in range(count):
        yield np.full(shape, i % 256, np.uint8)


def test_order_is_kept_with_batches_and_a_slow_model():
    def slow_identity(batch):
        time.sleep(0.001 * len(batch))
        return [frame.copy() for frame in batch]

    out = [int(f[0, 0, 0]) for f in stream(slow_identity, numbered_frames(50), batch_size=4, queue_size=3)]
    assert out == list(range(50))


def test_cartoonizer_stream_matches_frame_by_frame(tiny_onnx):
    cartoonizer = Cartoonizer(tiny_onnx, backend="cpu")
    frames = [np.random.default_rng(i).integers(0, 256, (20, 28, 3), dtype=np.uint8) for i in range(7)]
    streamed = list(cartoonizer.stream(iter(frames), batch_size=3))
    assert len(streamed) == 7
    for frame, out in zip(frames, streamed):
        assert np.abs(cartoonizer.run(frame).astype(int) - out).max() <= 1


def _threads_settle(before: int) -> bool:
    for _ in range(50):
        if threading.active_count() <= before:
            return True
        time.sleep(0.02)
    return False


def test_source_error_reaches_the_caller_and_no_thread_survives():
    before = threading.active_count()

    def broken_source():
        yield from numbered_frames(5)
        raise OSError("camera unplugged")

    seen = []
    with pytest.raises(OSError, match="camera unplugged"):
        for frame in stream(lambda batch: batch, broken_source(), batch_size=2):
            seen.append(int(frame[0, 0, 0]))
    assert seen == [0, 1, 2, 3, 4]
    assert _threads_settle(before)


def test_model_error_reaches_the_caller_and_no_thread_survives():
    before = threading.active_count()

    def failing(batch):
        if any(f[0, 0, 0] == 6 for f in batch):
            raise RuntimeError("model failed")
        return batch

    with pytest.raises(RuntimeError, match="model failed"):
        list(stream(failing, numbered_frames(100), batch_size=2))
    assert _threads_settle(before)


def test_stopping_early_stops_the_threads_and_the_source():
    before = threading.active_count()
    pulled = []

    def endless():
        i = 0
        while True:
            pulled.append(i)
            yield np.full((4, 4, 3), i % 256, np.uint8)
            i += 1

    frames = stream(lambda batch: batch, endless(), batch_size=2, queue_size=2)
    first = [next(frames) for _ in range(3)]
    frames.close()  # what `break` in a for loop does
    assert [int(f[0, 0, 0]) for f in first] == [0, 1, 2]
    assert _threads_settle(before)
    assert len(pulled) < 20  # bounded queues: the reader never ran far ahead
