"""Video decoding off the event loop, with bounded read-ahead.

Decoding is CPU work, so a worker thread reads frames while the loop waits on Triton; the
queue between them is bounded, so a slow pipeline never buffers a whole video.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np

_END = object()


async def read_frames_rgb(path: Path, read_ahead: int = 4) -> AsyncIterator[np.ndarray]:
    """Yield the RGB frames of a video file in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=read_ahead)
    stop = threading.Event()

    def put(item: object) -> None:
        # Blocks the worker thread (not the loop) while the queue is full.
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def worker() -> None:
        cap = cv2.VideoCapture(str(path))
        try:
            while not stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                put(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        except Exception as exc:  # surfaced to the consumer, not lost in the thread
            put(exc)
        finally:
            cap.release()
            if not stop.is_set():
                put(_END)

    thread = threading.Thread(target=worker, name=f"decode-{path.name}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Drain so a worker blocked on put() can see `stop` and exit.
        while thread.is_alive():
            while not queue.empty():
                queue.get_nowait()
            await asyncio.sleep(0.01)
