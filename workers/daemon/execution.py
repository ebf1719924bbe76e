"""Execution: a handler runs as a coroutine (async), in a thread (a plain function, so a
blocking call does not stall the loop) or in a process pool (``cpu_bound``), and every run gives
an :class:`~workers.daemon.outcome.Outcome`.

Pool processes ignore SIGINT and SIGTERM. Both reach the whole process group or cgroup (Ctrl-C in
a terminal, systemd's default ``KillMode=control-group``, a container init forwarding signals),
and a pool process that died of them would lose its running task and spend one of its retries.
The worker alone decides how to stop: it lets those tasks finish within the grace period and
kills the pool (SIGKILL) only when it abandons them. A pool process also exits when the worker
is gone (``kill -9``), so no job keeps running that the engine hands to another worker once the
lock expires; the pool's own machinery does not notice.

The pool starts its processes with ``spawn``: no ``fork()`` of a threaded event loop, and the
processes are the worker's own children. Under ``forkserver`` they are the fork server's, and the
pool watches them through pipes the fork server holds, so a SIGTERM that kills the fork server
breaks the pool as surely as one that kills the processes. A pool process is exposed to a stop
signal only while it starts, before its initializer has run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from modelops_mlc.registry.imports import import_mlflow_stack
from workers.daemon.outcome import Outcome, call_async_handler, call_handler

if TYPE_CHECKING:
    from workers.daemon.options import WorkerOptions
    from workers.handlers import TaskContext, TopicHandler

__all__ = ["Execution"]

T = TypeVar("T")

POOL_MODEL_CACHE = 8  # loaded pyfunc models each pool process keeps (LRU), see Registry.load_pyfunc


def _with_mlflow(func: Any, ctx: "TaskContext") -> Outcome:
    import_mlflow_stack()
    return call_handler(func, ctx)


class Execution:
    """Where handlers run: the event loop, a thread pool of ``concurrency`` threads, a process pool."""

    def __init__(self, options: "WorkerOptions") -> None:
        self._options = options
        self._threads = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="mlc-task")
        self._processes: ProcessPoolExecutor | None = None

    async def run(self, handler: "TopicHandler", ctx: "TaskContext") -> Outcome:
        if handler.is_async:
            return await call_async_handler(handler.func, ctx)
        loop = asyncio.get_running_loop()
        if handler.cpu_bound:
            try:
                return await loop.run_in_executor(self._process_pool(), call_handler, handler.func, ctx)
            except BrokenProcessPool as exc:
                self._processes = None  # a pool process died (killed, out of memory): start a fresh pool
                return Outcome("failure", message=f"the worker process running the task died: {exc}")
            except Exception as exc:  # e.g. the handler or its context cannot be pickled
                return Outcome.from_exception(exc)
        if handler.mlflow:  # the stack first, one thread at a time (see registry.imports)
            return await loop.run_in_executor(self._threads, _with_mlflow, handler.func, ctx)
        return await loop.run_in_executor(self._threads, call_handler, handler.func, ctx)

    async def in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Blocking work of the worker itself (the MLC store), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, func, *args)

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._processes is None:
            import multiprocessing

            opts = self._options
            size = opts.process_pool_size or max(1, min(opts.concurrency, os.cpu_count() or 1))
            self._processes = ProcessPoolExecutor(
                max_workers=size,
                mp_context=multiprocessing.get_context("spawn"),  # see the module's docstring
                initializer=init_pool_process,
                initargs=(opts.log_format, opts.log_level, os.getpid()),
            )
        return self._processes

    def shutdown(self, *, abandoned: bool) -> None:
        """Stop the pools; with ``abandoned`` tasks still running, kill the pool processes."""
        if self._processes is not None:
            stuck = list(getattr(self._processes, "_processes", {}).values())  # no public handle on them
            self._processes.shutdown(wait=not abandoned, cancel_futures=True)
            if abandoned:
                for proc in stuck:
                    if proc.is_alive():
                        proc.kill()  # SIGTERM is ignored in there (see the module's docstring)
            self._processes = None
        self._threads.shutdown(wait=False, cancel_futures=True)


def init_pool_process(log_format: str | None, level: int, worker_pid: int) -> None:
    """Set up a pool process: stop signals are the worker's to act on, and exit with the worker."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    from modelops_mlc.registry import set_model_cache_size

    set_model_cache_size(POOL_MODEL_CACHE)  # versions are immutable: reload a model per task no more
    if log_format:
        from modelops_mlc.daemon import configure_logging

        configure_logging(log_format, level=level)
    threading.Thread(target=_exit_with_worker, args=(worker_pid,), name="mlc-watch-worker", daemon=True).start()


def _exit_with_worker(worker_pid: int, interval: float = 0.5) -> None:
    import psutil

    try:
        worker = psutil.Process(worker_pid)
        while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:  # is_running: pid not reused
            time.sleep(interval)
    except psutil.Error:
        pass
    logging.shutdown()
    os._exit(1)
