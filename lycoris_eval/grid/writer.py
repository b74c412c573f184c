"""Writes a grid's finished images off the sampling thread.

PNG encoding (with its infotext), the file write with its fsync and the image's
``cells.jsonl`` line cost a visible share of each image at 512×512; here they run on one
background thread while the host samples the next image. Order is kept (one thread, one
queue: every line of ``cells.jsonl`` is written by it, failures and skips included), and
the queue is bounded, so a crash loses at most the images in flight (``depth`` + the one
being written); a resume makes them again. The first write error stops further writes and
is answered to the runner, which stops the grid with it. Must not import the WebUI.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from lycoris_eval.grid.store import RunStore

DEPTH = 2


class RunWriter:
    def __init__(
        self,
        store: RunStore,
        write_file: Callable[[Path, bytes], None],
        encode: Callable[[Image.Image, str], bytes],
        depth: int = DEPTH,
    ) -> None:
        self.store = store
        self.write_file = write_file
        self.encode = encode
        self.error: OSError | None = None
        self.written = 0  # images whose file and line are durable
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._work, name="lycoris-eval-writer", daemon=True)
        self._thread.start()

    def save(self, path: Path, image: Image.Image, infotext: str, record: dict[str, Any]) -> None:
        """Queue one finished image and its line (blocks while ``depth`` images wait)."""
        self._queue.put(("image", path, image, infotext, record))

    def append(self, record: dict[str, Any]) -> None:
        """Queue a line without an image (a failure, a skip), in order with the images."""
        self._queue.put(("line", record))

    def close(self) -> OSError | None:
        """Write everything queued, stop the thread; the first write error, if any."""
        self._queue.put(None)
        self._thread.join()
        return self.error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # after a failed write nothing more is written; the runner stops
            try:
                if item[0] == "image":
                    _, path, image, infotext, record = item
                    self.write_file(path, self.encode(image, infotext))
                    self.store.append(record)
                    self.written += 1
                else:
                    self.store.append(item[1])
            except OSError as exc:
                self.error = exc
