"""A bounded queue drained by one background thread: how the model server does work off the request path."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Generic, TypeVar

__all__ = ["BackgroundQueue"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Marker:
    """Put on the queue by :meth:`BackgroundQueue.flush`; set once everything before it is handled."""

    def __init__(self) -> None:
        self.done = threading.Event()


class BackgroundQueue(Generic[T]):
    """Items offered without blocking (a full queue drops them, counted in ``dropped``), handled in
    batches of up to ``batch`` by :meth:`handle` on a thread of its own; :meth:`stop` handles what is left.

    With ``linger`` the thread waits that long after the first item of a batch, so a busy server
    hands over a few large batches instead of waking the thread for every item.
    """

    def __init__(self, name: str, *, capacity: int, batch: int, interval: float = 0.25, linger: float = 0.0) -> None:
        self.name = name
        self.batch = batch
        self.interval = interval
        self.linger = linger
        self.dropped = 0
        self._queue: queue.Queue[T | _Marker] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    def handle(self, items: list[T]) -> None:
        raise NotImplementedError

    def offer(self, item: T) -> bool:
        """Queue ``item``; never blocks. False (and one more drop) when the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("%s: queue full, %d items dropped so far", self.name, self.dropped)
            return False

    def start(self) -> None:
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item queued before this call is handled; False on timeout or when not running."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return False
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Handle what is queued, then end the thread (idempotent)."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            try:
                self._queue.put_nowait(_Marker())  # wakes the thread at once
            except queue.Full:
                pass
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.interval)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if self.linger and not isinstance(first, _Marker):
                self._stop.wait(self.linger)
            items = [first]
            while len(items) < self.batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [i for i in items if not isinstance(i, _Marker)]
            if work:
                try:
                    self.handle(work)  # type: ignore[arg-type]
                except Exception as exc:  # the thread must outlive any one batch
                    self.dropped += len(work)
                    log.warning("%s: %d items lost: %s", self.name, len(work), exc)
            for item in items:
                if isinstance(item, _Marker):
                    item.done.set()
            if self._stop.is_set() and self._queue.empty():
                return
