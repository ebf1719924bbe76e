"""The one way to quiet MLflow: its loggers (and alembic's, which migrates MLflow's database)
and the warnings it raises while it logs, registers or loads a model.

Entry points call :func:`quiet_mlflow_logs` once; library code wraps a noisy call in
:func:`quiet_mlflow`. Neither adds a handler.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

__all__ = ["MLFLOW_LOGGERS", "quiet_mlflow", "quiet_mlflow_logs"]

MLFLOW_LOGGERS = ("mlflow", "alembic")

_lock = threading.Lock()
_depth = 0
_saved_levels: dict[str, int] = {}
_saved_warnings: warnings.catch_warnings | None = None


def quiet_mlflow_logs(level: int = logging.WARNING) -> None:
    """From now on MLflow's loggers pass only records at ``level`` and above (MLflow and alembic
    chatter at INFO). For entry points: the CLI, the daemons."""
    for name in MLFLOW_LOGGERS:
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def quiet_mlflow(level: int = logging.ERROR) -> Iterator[None]:
    """For a block: MLflow's loggers at ``level`` at least, and every warning ignored.

    Levels and warning filters are process-wide, so overlapping blocks (a worker's threads)
    share them: the first block to enter saves them, the last to leave restores them.
    """
    global _depth, _saved_warnings
    with _lock:
        if _depth == 0:
            _saved_levels.update({name: logging.getLogger(name).level for name in MLFLOW_LOGGERS})
            _saved_warnings = warnings.catch_warnings()
            _saved_warnings.__enter__()
            warnings.simplefilter("ignore")
        _depth += 1
        for name in MLFLOW_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level < level:
                logger.setLevel(level)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name, saved in _saved_levels.items():
                    logging.getLogger(name).setLevel(saved)
                _saved_levels.clear()
                if _saved_warnings is not None:
                    _saved_warnings.__exit__(None, None, None)
                    _saved_warnings = None
