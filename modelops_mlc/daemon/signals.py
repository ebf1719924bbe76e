"""How every daemon stops: the first SIGTERM or SIGINT asks for a graceful stop within a grace
period, a second one forces it.

Handlers are installed on the asyncio loop when there is one (the worker), else with
:func:`signal.signal` in the main thread (the ticket watcher); either way they run where the
daemon's own code runs, so the callbacks may touch its state.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["STOP_SIGNALS", "GracefulStop"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Stop requests of one daemon: ``requested`` after the first, ``forced`` after the second."""

    def __init__(self, grace_period_s: float, *, on_request: Callable[[str], None] | None = None,
                 on_force: Callable[[str], None] | None = None) -> None:
        self.grace_period_s = grace_period_s
        self.requested = threading.Event()
        self.forced = threading.Event()
        self.reason: str | None = None
        self.deadline: float | None = None
        self._on_request = on_request
        self._on_force = on_force
        self._installed: list[tuple[signal.Signals, object]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self, reason: str = "requested") -> None:
        """Ask for a graceful stop (idempotent); asking again forces it."""
        if self.requested.is_set():
            if not self.forced.is_set():
                self.forced.set()
                if self._on_force:
                    self._on_force(reason)
            return
        self.reason = reason
        self.deadline = time.monotonic() + self.grace_period_s
        self.requested.set()
        if self._on_request:
            self._on_request(reason)

    def remaining(self) -> float:
        """Seconds left of the grace period (the whole period before a request)."""
        if self.deadline is None:
            return self.grace_period_s
        return max(self.deadline - time.monotonic(), 0.0)

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Route SIGTERM and SIGINT to :meth:`request`: on ``loop`` if given, else process-wide."""
        for sig in STOP_SIGNALS:
            name = signal.Signals(sig).name
            if loop is not None:
                loop.add_signal_handler(sig, self.request, name)
                self._installed.append((sig, None))
            else:
                previous = signal.signal(sig, lambda _sig, _frame, n=name: self.request(n))
                self._installed.append((sig, previous))
        self._loop = loop

    def uninstall(self) -> None:
        for sig, previous in self._installed:
            if self._loop is not None:
                self._loop.remove_signal_handler(sig)
            else:
                signal.signal(sig, previous)  # type: ignore[arg-type]
        self._installed.clear()
        self._loop = None
