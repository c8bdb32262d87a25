"""Streaming: keep the model busy while frames are read and written.

    for cartoon in Cartoonizer().stream(frames, batch_size=4):
        writer.write(cartoon)

A reader thread pulls frames from the source into a bounded queue and an
inference thread runs them in batches into a second bounded queue, so reading,
inference and the caller's writing overlap and memory does not grow with the
length of the video. Frames come out in order. An error in any stage is raised
in the caller; when the caller stops early, raises, or is interrupted, both
threads are stopped and joined before `stream` returns.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator

from cartoongan.errors import InvalidInput

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put unless asked to stop; False if stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return _DONE


def stream(
    run_batch: Callable[[list[Any]], list[Any]],
    frames: Iterable[Any],
    batch_size: int = 4,
    queue_size: int = 8,
) -> Iterator[Any]:
    """Yield `run_batch` applied to `frames`, in order, with reading and inference in background threads."""
    if batch_size < 1 or queue_size < 1:
        raise InvalidInput(f"batch_size and queue_size must be at least 1, got {batch_size} and {queue_size}")
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    results: queue.Queue = queue.Queue(maxsize=queue_size)

    def read() -> None:
        try:
            for frame in frames:
                if not _put(decoded, frame, stop):
                    return
            _put(decoded, _DONE, stop)
        except BaseException as exc:  # the source failed: tell the caller
            _put(decoded, _Failure(exc), stop)

    def infer() -> None:
        finished = False
        while not finished and not stop.is_set():
            batch: list[Any] = []
            while len(batch) < batch_size:
                # wait for the first frame of a batch; take more only if they are already there
                item = _get(decoded, stop) if not batch else _next_ready(decoded)
                if item is None:
                    break
                if item is _DONE or isinstance(item, _Failure):
                    finished = True
                    tail = item
                    break
                batch.append(item)
            try:
                outputs = run_batch(batch) if batch else []
            except BaseException as exc:
                _put(results, _Failure(exc), stop)
                return
            for out in outputs:
                if not _put(results, out, stop):
                    return
            if finished:
                _put(results, tail, stop)

    threads = [threading.Thread(target=read, daemon=True), threading.Thread(target=infer, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        while True:
            item = results.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _next_ready(q: queue.Queue) -> Any:
    try:
        return q.get_nowait()
    except queue.Empty:
        return None
