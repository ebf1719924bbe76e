"""Import MLflow's model-loading stack from one thread at a time.

Two threads importing mlflow at once can see it half initialised ("cannot import name 'Run' from
partially initialized module 'mlflow.entities'"): the import system's per-module locks do not
cover a package whose modules import each other in a cycle. The runtime server's warm-up thread and
its loader, and a worker's handler threads before a task of a handler that may use MLflow, import the
stack through this one lock, so the first to come imports it and the others wait for it.
"""

from __future__ import annotations

import importlib
import threading

_LOCK = threading.Lock()
_imported = False  # set once the stack is in: later calls skip the lock (a worker calls this per task)
MLFLOW_STACK = ("mlflow.pyfunc", "mlflow.artifacts", "mlflow.models", "mlflow.tracking", "sklearn",
                "mlflow.sklearn", "skops.io", "pandas")


def import_mlflow_stack() -> None:
    """Import the stack once (later calls return at once); pieces that are not installed are skipped."""
    global _imported
    if _imported:
        return
    with _LOCK:
        for module in MLFLOW_STACK:
            try:
                importlib.import_module(module)
            except Exception:  # optional pieces (skops, say); whoever uses one reports the real problem
                pass
        _imported = True
