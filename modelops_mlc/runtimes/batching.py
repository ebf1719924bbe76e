"""Requests that arrive together share one model call (micro-batching on the event loop).

A one-row request spends most of its model time in scikit-learn's per-call work (input checks,
pipeline dispatch), not in arithmetic: eight one-row calls cost almost eight times one eight-row
call. So the server does not call the model per request. A request's rows are checked on their own
(a bad request fails alone), then queued; the queue is flushed by a callback scheduled on the event
loop, which runs after the request handlers already ready in the same loop iteration have queued
their rows too. The flush stacks each model's rows, makes one call, and hands each request its slice.

Nothing waits for a batch to fill: a lone request is flushed in the loop's next iteration, after
one look at the sockets and no timer, so batching adds next to no latency at concurrency 1. Under
load, requests that came in while the model ran are ready together and share the next call. MLServer's adaptive batching waits up to a timeout for a
batch; this one never waits, which is why it is written here rather than taken from a library.

Only predictors whose fast path showed, on their input example, that rows predicted together equal
rows predicted alone are batched (``Predictor.batchable``); a batch that fails is re-run request by
request, so an error reaches the request that caused it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from modelops_mlc.runtimes.predictor import Batch, Predictor

log = logging.getLogger(__name__)


class MicroBatcher:
    """One per server process; its queue is only touched from the event loop's thread."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple["Predictor", list[tuple[np.ndarray, asyncio.Future[Any]]]]] = {}
        self._scheduled = False
        self.calls = 0  # model calls made, and the requests they answered (for tests and status)
        self.requests = 0

    async def predict(self, predictor: "Predictor", batch: "Batch") -> Any:
        matrix = predictor.matrix(batch)  # what is wrong with this request fails it alone, here
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.setdefault(id(predictor), (predictor, []))[1].append((matrix, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for predictor, items in pending.values():
            live = [(m, f) for m, f in items if not f.done()]  # a client that went away was cancelled
            if live:
                self._answer(predictor, live)

    def _answer(self, predictor: "Predictor", items: list[tuple[np.ndarray, asyncio.Future[Any]]]) -> None:
        self.requests += len(items)
        if len(items) > 1:
            sizes = [m.shape[0] for m, _ in items]
            try:
                self.calls += 1
                out = predictor.predict_matrix(np.vstack([m for m, _ in items]))
                if isinstance(out, np.ndarray) and out.shape[:1] == (sum(sizes),):
                    start = 0
                    for (_, future), size in zip(items, sizes):
                        future.set_result(out[start:start + size])
                        start += size
                    return
            except Exception as exc:  # one request's rows may be what the model refuses: find it below
                log.debug("batch of %d requests failed (%s); predicting them one by one", len(items), exc)
        for matrix, future in items:
            self.calls += 1
            try:
                future.set_result(predictor.predict_matrix(matrix))
            except Exception as exc:  # the handler turns it into the request's answer
                future.set_exception(exc)
