"""Training as a job the process waits on: a detached OS process with a record in the MLC store.

:func:`submit` writes the job record (keyed by the submitting task, so a redelivered submit finds
the job it started) and starts ``python -m modelops_mlc.retraining.runner JOB_ID`` in its own
session: the job outlives the worker that started it. The runner takes the job (a conditional
update from ``submitted``, so a second runner of the same job exits at once), trains with
:func:`modelops_mlc.jobs.train`, points the alias ``challenger`` at the new version and writes
the result. :func:`status` reads the record and declares a job ``crashed`` when its process is
gone without a result (same host: the pid is dead; any host: its heartbeat went stale).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from modelops_mlc.errors import MlcError, NotFoundError
from modelops_mlc.retraining.models import TrainingJobRow
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["CHALLENGER_ALIAS", "HEARTBEAT_S", "STALE_AFTER_S", "TrainingJob", "status", "submit"]

log = logging.getLogger(__name__)

CHALLENGER_ALIAS = "challenger"
HEARTBEAT_S = 5.0  # how often a running job says it is alive
STALE_AFTER_S = 120.0  # a job silent this long (another host, or a hung start) has crashed
ACTIVE = ("submitted", "running")
JobState = Literal["submitted", "running", "succeeded", "failed", "crashed"]


class TrainingJob(BaseModel):
    """A training job as the status topic and `mlc retrain` report it."""

    id: str
    key: str
    model_name: str
    parent_version: int
    training_data: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    process_instance_id: str | None = None
    state: JobState
    host: str | None = None
    pid: int | None = None
    log_path: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def done(self) -> bool:
        return self.state not in ACTIVE


def _record(row: TrainingJobRow) -> TrainingJob:
    return TrainingJob.model_validate(row, from_attributes=True)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _job_env(settings: "Settings") -> dict[str, str]:
    """The runner sees the store and registry its submitter uses, whatever their source."""
    env = dict(os.environ)
    env.update({"MLC_HOME": str(settings.home), "MLC_STORE_URL": settings.store_url,
                "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri})
    return env


def _spawn(settings: "Settings", job_id: str) -> tuple[int, float | None, Path]:
    import psutil

    log_dir = settings.home / "jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{job_id}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelops_mlc.retraining.runner", job_id],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_job_env(settings),
            cwd=settings.home, start_new_session=True,  # its own session: signals to the worker's group miss it
        )
    # Reap it when it ends, so a finished job leaves no zombie behind a long-lived worker.
    threading.Thread(target=proc.wait, name=f"reap-job-{job_id}", daemon=True).start()
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        started = None
    return proc.pid, started, log_path


def submit(
    settings: "Settings",
    key: str,
    *,
    model_name: str,
    parent_version: int,
    training_data: str | None = None,
    params: Mapping[str, Any] | None = None,
    process_instance_id: str | None = None,
) -> TrainingJob:
    """Start the training job for ``key`` unless it exists; returns its record either way."""
    store = open_store(settings)
    job_id = uuid.uuid4().hex
    try:
        with store.session() as s:
            s.add(TrainingJobRow(id=job_id, key=key, model_name=model_name, parent_version=int(parent_version),
                                 training_data=training_data, params=dict(params or {}),
                                 process_instance_id=process_instance_id, state="submitted", host=socket.gethostname()))
    except MlcError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
        with store.session() as s:
            existing = s.execute(select(TrainingJobRow).where(TrainingJobRow.key == key)).scalar_one()
            if existing.pid is not None or existing.state not in ACTIVE:
                log.info("training job %s for %s already submitted", existing.id, key)
                return _record(existing)
            job_id = existing.id  # recorded but never started (the submitter died in between): start it
    pid, started, log_path = _spawn(settings, job_id)
    with store.session() as s:
        s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id).values(log_path=str(log_path)))
        # the runner records itself when it takes the job; this covers the moments before
        s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id, TrainingJobRow.pid.is_(None))
                  .values(pid=pid, pid_started=started, heartbeat_at=utcnow()))
        return _record(s.get(TrainingJobRow, job_id))


def _alive(row: TrainingJobRow) -> bool:
    """Whether the job's process still runs (only answerable on the host that started it)."""
    import psutil

    try:
        proc = psutil.Process(row.pid)  # type: ignore[arg-type]
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return row.pid_started is None or abs(proc.create_time() - row.pid_started) < 1.0
    except psutil.Error:
        return False


def _stop_overdue(row: TrainingJobRow, now: dt.datetime, timeout_s: float | None) -> str | None:
    """Past ``timeout_s`` since it was submitted, a job still running is stopped (its whole
    session, on the host that started it) and failed: a training that hangs alive would keep the
    process polling for ever."""
    begun = _utc(row.created_at)
    if timeout_s is None or begun is None or (now - begun).total_seconds() <= timeout_s:
        return None
    if row.pid is not None and row.host == socket.gethostname() and _alive(row):
        import signal

        try:
            os.killpg(row.pid, signal.SIGKILL)  # its own session (start_new_session): the group is the job
        except ProcessLookupError:
            pass
    return f"training job ran longer than its timeout of {timeout_s:g} s and was stopped"


def _crash_reason(row: TrainingJobRow, now: dt.datetime) -> str | None:
    if row.pid is not None and row.host == socket.gethostname():
        return None if _alive(row) else f"training process {row.pid} exited without a result"
    last = _utc(row.heartbeat_at) or _utc(row.created_at)
    if last is not None and (now - last).total_seconds() > STALE_AFTER_S:
        return f"training job silent since {last.isoformat(timespec='seconds')} (host {row.host})"
    return None


def status(settings: "Settings", job_id: str, *, timeout_s: float | None = None) -> TrainingJob:
    """The job's current record; an active job whose process is gone is marked ``crashed``, one
    older than ``timeout_s`` is stopped and marked ``failed``."""
    store = open_store(settings)
    with store.session() as s:
        row = s.get(TrainingJobRow, job_id)
        if row is None:
            raise NotFoundError(f"no training job {job_id}")
        if row.state not in ACTIVE:
            return _record(row)
        now = utcnow()
        overdue = _stop_overdue(row, now, timeout_s)
        reason = None if overdue else _crash_reason(row, now)
        if overdue is None and reason is None:
            return _record(row)
        s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id, TrainingJobRow.state.in_(ACTIVE))
                  .values(state="failed" if overdue else "crashed", error=overdue or reason, finished_at=now))
    with store.session() as s:  # re-read: the job may have written its result just before
        return _record(s.get(TrainingJobRow, job_id))  # type: ignore[arg-type]

