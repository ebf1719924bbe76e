"""What the long-running daemons (`mlc worker start`, `mlc ticket watch`) share: how they stop
(:class:`GracefulStop`), their status files (:class:`StatusFile`) and their log lines
(:func:`configure_logging`)."""

from modelops_mlc.daemon.logs import JsonFormatter, TextFormatter
from modelops_mlc.daemon.logs import configure as configure_logging
from modelops_mlc.daemon.signals import GracefulStop
from modelops_mlc.daemon.status import StatusFile, running, running_workers, status_path

__all__ = [
    "GracefulStop",
    "JsonFormatter",
    "StatusFile",
    "TextFormatter",
    "configure_logging",
    "running",
    "running_workers",
    "status_path",
]
