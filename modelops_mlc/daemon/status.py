"""Status files of running daemons: ``$MLC_HOME/<kind>/<name>.json``, e.g. ``workers/<worker-id>.json``
(written by `mlc worker start`, read by `mlc worker status` and `mlc status`) and
``watchers/ticket-watcher.json`` (written by `mlc ticket watch`).

A daemon rewrites its file when its state changes and at each heartbeat, and removes it on a
clean stop. :func:`running` reads them back and drops (and deletes) the files of processes that
are gone, e.g. after ``kill -9``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

from modelops_mlc.serialize import json_safe

__all__ = [
    "StatusFile",
    "WorkerStatus",
    "read_status_files",
    "running",
    "running_workers",
    "status_dir",
    "status_path",
    "write_status",
]

log = logging.getLogger(__name__)

WorkerStatus = dict[str, Any]
WORKERS = "workers"


def status_dir(home: Path, kind: str = WORKERS) -> Path:
    return Path(home) / kind


def status_path(home: Path, name: str, kind: str = WORKERS) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", name) or "daemon"
    return status_dir(home, kind) / f"{safe}.json"


def write_status(path: Path, status: WorkerStatus) -> None:
    """Replace the file atomically, so a reader never sees half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(json_safe(status)))
    os.replace(tmp, path)


def _alive(pid: int, started_at: str | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started_at:  # the pid may have been reused by an unrelated process since
            started = dt.datetime.fromisoformat(started_at).timestamp()
            if proc.create_time() > started + 5:
                return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def read_status_files(home: Path, kind: str = WORKERS) -> list[tuple[Path, WorkerStatus]]:
    found: list[tuple[Path, WorkerStatus]] = []
    folder = status_dir(home, kind)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as exc:
            log.debug("skipping unreadable status file %s: %s", path, exc)
    return found


def running(home: Path, kind: str, *, prune: bool = True) -> list[WorkerStatus]:
    """Status of every live daemon of ``kind`` under ``home``; files of dead processes are removed."""
    live: list[WorkerStatus] = []
    for path, status in read_status_files(home, kind):
        pid = status.get("pid")
        if isinstance(pid, int) and _alive(pid, status.get("started_at")):
            live.append(status)
        elif prune:
            path.unlink(missing_ok=True)
    return live


def running_workers(home: Path, *, prune: bool = True) -> list[WorkerStatus]:
    """Status of every live worker under ``home``."""
    return running(home, WORKERS, prune=prune)


class StatusFile:
    """One daemon's status file: written whole on each change, removed on a clean stop. Every
    write carries what :func:`running` needs to tell a live daemon (pid, start time) and a
    heartbeat."""

    def __init__(self, home: Path, name: str, kind: str = WORKERS) -> None:
        self.path = status_path(home, name, kind)
        self.started_at = dt.datetime.now(dt.timezone.utc).isoformat()

    def write(self, status: WorkerStatus) -> None:
        full = {"pid": os.getpid(), "hostname": socket.gethostname(), "started_at": self.started_at, **status,
                "heartbeat": dt.datetime.now(dt.timezone.utc).isoformat()}
        try:
            write_status(self.path, full)
        except OSError as exc:
            log.warning("cannot write status file %s: %s", self.path, exc)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
