"""The process a training job runs in: ``python -m modelops_mlc.retraining.runner JOB_ID``.

Started by :func:`modelops_mlc.retraining.jobs.submit`; reads its job record, trains, points
the alias ``challenger`` at the new version and writes the result (or the error) back. While it
trains it beats a heartbeat into the record. Exit status 0 once the record holds the outcome.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING

from sqlalchemy import update

from modelops_mlc.errors import MlcError, first_line
from modelops_mlc.retraining.jobs import CHALLENGER_ALIAS, HEARTBEAT_S
from modelops_mlc.retraining.models import TrainingJobRow
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.store import Store

__all__ = ["main", "run_job"]

log = logging.getLogger(__name__)

JOB_TAG = "mlc.training_job"


def _take(store: "Store", job_id: str) -> TrainingJobRow | None:
    """Move the job from submitted to running for this process; None when another runner has it."""
    import psutil

    with store.session() as s:
        taken = s.execute(
            update(TrainingJobRow).where(TrainingJobRow.id == job_id, TrainingJobRow.state == "submitted")
            .values(state="running", pid=os.getpid(), pid_started=psutil.Process().create_time(),
                    host=socket.gethostname(), started_at=utcnow(), heartbeat_at=utcnow())
        ).rowcount
        return s.get(TrainingJobRow, job_id) if taken else None


def _finish(store: "Store", job_id: str, **values: object) -> None:
    with store.session() as s:
        s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id, TrainingJobRow.state == "running")
                  .values(finished_at=utcnow(), **values))


def _heartbeat(store: "Store", job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            with store.session() as s:
                s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id).values(heartbeat_at=utcnow()))
        except MlcError as exc:  # a busy store skips one beat; staleness takes minutes
            log.warning("heartbeat of training job %s failed: %s", job_id, exc.message)


def run_job(settings: "Settings", job_id: str) -> str | None:
    """Run one job to its outcome; returns its final state, or None when it was not ours to run."""
    from modelops_mlc.jobs import train
    from modelops_mlc.jobs.runs import DEDUPE_TAG
    from modelops_mlc.registry import Registry

    store = open_store(settings)
    row = _take(store, job_id)
    if row is None:
        log.info("training job %s is not waiting to start; nothing to do", job_id)
        return None
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, job_id, stop), daemon=True)
    beat.start()
    try:
        registry = Registry(settings)
        result = train(registry, f"{row.model_name}/{row.parent_version}", training_data=row.training_data,
                       params=row.params or None, tags={DEDUPE_TAG: row.key, JOB_TAG: job_id})
        registry.set_alias(result.model_name, CHALLENGER_ALIAS, result.version)
    except MlcError as exc:
        _finish(store, job_id, state="failed", error=exc.message)
        return "failed"
    except Exception as exc:
        log.exception("training job %s failed", job_id)
        _finish(store, job_id, state="failed", error=first_line(exc, typed=True))
        return "failed"
    finally:
        stop.set()
    _finish(store, job_id, state="succeeded",
            result={"version": result.version, "parent_version": result.parent_version, "run_id": result.run_id,
                    "metrics": result.metrics, "rows": result.rows, "duration_s": result.duration_s})
    return "succeeded"


def main(argv: list[str] | None = None) -> int:
    from modelops_mlc.config import load_settings
    from modelops_mlc.registry.quiet import quiet_mlflow_logs

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modelops_mlc.retraining.runner JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_mlflow_logs()
    state = run_job(load_settings(), args[0])
    log.info("training job %s: %s", args[0], state or "not run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
