"""How one worker runs (:class:`WorkerOptions`, which the CLI's flags map onto) and what it did
(:class:`WorkerSummary`)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from modelops_mlc.errors import UsageError

__all__ = ["WorkerOptions", "WorkerSummary", "default_worker_id"]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerOptions:
    """How one worker runs; the CLI maps its flags onto these."""

    worker_id: str = field(default_factory=default_worker_id)
    topics: tuple[str, ...] | None = None  # None: every topic of the handlers
    process_keys: tuple[str, ...] | None = None  # only tasks of these process definitions (None: any)
    concurrency: int = 4
    prefetch: int | None = None  # tasks locked ahead while tasks are short (None: concurrency; 0: never)
    lock_duration_ms: int = 60_000
    long_poll_ms: int = 10_000  # a stop waits for a pending poll, so keep it modest
    max_retries: int = 3
    retry_backoff_ms: int = 5_000  # first retry; doubles per retry
    max_retry_backoff_ms: int = 600_000
    grace_period_s: float = 30.0
    process_pool_size: int | None = None  # None: min(concurrency, CPUs)
    status_interval_s: float = 5.0
    log_format: str | None = None  # how pool processes log ("text"/"json"); None: they do not configure logging
    log_level: int = logging.INFO

    def validate(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.lock_duration_ms < 100:
            raise UsageError("--lock-duration must be at least 100 ms")
        if self.prefetch is not None and self.prefetch < 0:
            raise UsageError("--prefetch must be 0 or more")
        if self.max_retries < 0:
            raise UsageError("--retries must be 0 or more")
        if self.long_poll_ms < 0 or self.retry_backoff_ms < 0 or self.grace_period_s < 0:
            raise UsageError("durations must not be negative")
        if not self.worker_id.strip():
            raise UsageError("--worker-id must not be empty")


@dataclass
class WorkerSummary:
    completed: int = 0
    bpmn_errors: int = 0
    failures: int = 0
    incidents: int = 0
    replayed: int = 0
    lock_lost: int = 0
    abandoned: int = 0  # still running when the grace period ended; unlocked for another worker
    abandoned_threads: int = 0  # of those, ones in a thread that Python cannot stop
