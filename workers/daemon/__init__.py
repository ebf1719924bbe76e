"""The external-task worker daemon (`mlc worker start`), built from parts:

* :mod:`.fetching`  slots and fetching: one long-polling fetchAndLock for the free slots;
* :mod:`.execution` async, thread or process pool, giving an :class:`Outcome`;
* :mod:`.reporting` the retry plan, lock keeping, the report and replay;
* :mod:`.status`    the status file `mlc worker status` reads;
* :mod:`.worker`    the :class:`Worker` that composes them, over an external-task API it is given.
"""

from workers.daemon.options import WorkerOptions, WorkerSummary, default_worker_id
from workers.daemon.outcome import Outcome, call_handler
from workers.daemon.reporting import retry_plan
from workers.daemon.worker import Worker, run_worker

__all__ = [
    "Outcome",
    "Worker",
    "WorkerOptions",
    "WorkerSummary",
    "call_handler",
    "default_worker_id",
    "retry_plan",
    "run_worker",
]
