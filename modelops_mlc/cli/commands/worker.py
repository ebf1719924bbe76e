"""`mlc worker start|status|topics`: the external-task worker daemon and what is running."""

from __future__ import annotations

import datetime as dt
import logging
from enum import Enum
from typing import Annotated, Any

import typer

from modelops_mlc.cli._common import JsonOpt, info, render, settings

app = typer.Typer(help="Run the external-task workers that do the ML work of MLC processes.", no_args_is_help=True)


class LogFormat(str, Enum):
    text = "text"
    json = "json"


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def start(
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Serve only this topic (repeatable; default: every known topic)."),
    ] = None,
    process_key: Annotated[
        list[str] | None,
        typer.Option("--process-key", "-p", help="Only take tasks of this process definition key (repeatable)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, envvar="MLC_WORKER_CONCURRENCY", help="Tasks run at once, at most.")
    ] = 4,
    prefetch: Annotated[
        int | None,
        typer.Option("--prefetch", min=0, envvar="MLC_WORKER_PREFETCH",
                     help="Tasks locked ahead while tasks are short (default: the concurrency; 0: never).",
                     show_default=False),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option("--worker-id", envvar="MLC_WORKER_ID", help="Worker id the engine sees (default: host-pid).",
                     show_default=False),
    ] = None,
    handlers: Annotated[
        list[str] | None,
        typer.Option("--handlers", envvar="MLC_WORKER_HANDLERS",
                     help="Custom handlers: module (its @topic functions) or module:object (repeatable)."),
    ] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin/--no-builtin", help="Serve the built-in MLC topics (get-model, train, ...).")
    ] = True,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", envvar="MLC_WORKER_LOG_FORMAT", help="One line per task event, as text or JSON.")
    ] = LogFormat.text,
    log_level: Annotated[LogLevel, typer.Option("--log-level", envvar="MLC_WORKER_LOG_LEVEL")] = LogLevel.info,
    lock_duration: Annotated[
        int,
        typer.Option("--lock-duration", min=100, envvar="MLC_WORKER_LOCK_DURATION",
                     help="Lock duration in ms; extended every third of it while a task runs."),
    ] = 60_000,
    long_poll: Annotated[
        int, typer.Option("--long-poll", min=0, envvar="MLC_WORKER_LONG_POLL",
                          help="Long-polling timeout of a fetch, ms (a stop waits for the pending poll).")
    ] = 10_000,
    retries: Annotated[
        int, typer.Option("--retries", min=0, envvar="MLC_WORKER_RETRIES",
                          help="Retries of a failing task before it becomes an incident.")
    ] = 3,
    retry_backoff: Annotated[
        int, typer.Option("--retry-backoff", min=0, envvar="MLC_WORKER_RETRY_BACKOFF",
                          help="Wait before the first retry, ms; doubles with each retry.")
    ] = 5_000,
    grace_period: Annotated[
        float, typer.Option("--grace-period", min=0, envvar="MLC_WORKER_GRACE_PERIOD",
                            help="Seconds running tasks get to finish on SIGTERM/SIGINT.")
    ] = 30.0,
    processes: Annotated[
        int | None, typer.Option("--processes", min=1, envvar="MLC_WORKER_PROCESSES",
                                 help="Process pool size for CPU-heavy topics (default: min(concurrency, CPUs)).",
                                 show_default=False)
    ] = None,
) -> None:
    """Serve MLC topics until SIGTERM/SIGINT; running tasks finish within the grace period."""
    import os
    import sys

    from modelops_mlc.daemon import configure_logging
    from workers.daemon import WorkerOptions, default_worker_id, run_worker
    from workers.handlers import TopicHandlers, load_builtin_handlers, load_entry_points, load_handlers

    level = getattr(logging, log_level.value.upper())
    configure_logging(log_format.value, level=level)
    served = TopicHandlers()
    if builtin:
        load_builtin_handlers(served)
    load_entry_points(served)
    load_handlers(list(handlers or []), served)
    options = WorkerOptions(
        worker_id=worker_id or default_worker_id(),
        topics=tuple(topic) if topic else None,
        process_keys=tuple(process_key) if process_key else None,
        concurrency=concurrency,
        prefetch=prefetch,
        lock_duration_ms=lock_duration,
        long_poll_ms=long_poll,
        max_retries=retries,
        retry_backoff_ms=retry_backoff,
        grace_period_s=grace_period,
        process_pool_size=processes,
        log_format=log_format.value,
        log_level=level,
    )
    summary = run_worker(settings(), options, served)
    if summary.abandoned_threads:
        # A handler thread still runs past the grace period; its task is unlocked already, and
        # Python would wait for the thread at exit. Leave now, as promised to the supervisor.
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(0)


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    try:
        seconds = (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(timestamp)).total_seconds()
    except ValueError:
        return timestamp
    return f"{seconds:.0f}s ago"


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show the workers running under MLC_HOME, their topics and the tasks in flight."""
    from modelops_mlc.daemon import running_workers

    workers = running_workers(settings().home)
    if as_json:
        render(workers, as_json=True)
        return
    rows: list[dict[str, Any]] = [
        {
            "worker": w.get("worker_id"),
            "pid": w.get("pid"),
            "state": w.get("state"),
            "topics": w.get("topics"),
            "in flight": f"{len(w.get('in_flight') or [])}/{w.get('concurrency')}",
            "tasks": [f"{t.get('topic')}:{str(t.get('task_id'))[:8]} ({t.get('model_id') or '-'})"
                      for t in w.get("in_flight") or []],
            "heartbeat": _age(w.get("heartbeat")),
        }
        for w in workers
    ]
    render(rows, as_json=False, title="workers", empty="no worker running (start one with `mlc worker start`)")


@app.command()
def topics(as_json: JsonOpt = False) -> None:
    """List the topics a worker would serve: built-in, entry points and how each runs."""
    from workers.handlers import TopicHandlers, load_builtin_handlers, load_entry_points

    known = TopicHandlers()
    load_builtin_handlers(known)
    load_entry_points(known)
    rows = [
        {"topic": h.topic, "handler": h.name, "runs in": "process pool" if h.cpu_bound else ("event loop" if h.is_async else "thread")}
        for h in known
    ]
    render(rows, as_json=as_json, title="topics")
    if not rows and not as_json:
        info("no topics")
