"""Log lines of the daemons (worker, ticket watcher): one line per event, as text or as JSON.

Daemons log events with ``extra={"event": ..., "fields": {...}}``; a worker's fields carry topic,
task id, process instance, MODEL_ID and duration. The library adds no handlers: the daemons'
entry points (`mlc worker start`, `mlc ticket watch`) call :func:`configure`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from modelops_mlc.registry.quiet import quiet_mlflow_logs
from modelops_mlc.serialize import json_safe

__all__ = ["JsonFormatter", "TextFormatter", "configure"]

_FIELD_ORDER = ("topic", "task_id", "process_instance_id", "model_id", "activity_id", "duration_ms")


def _timestamp(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, message and the task fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, "event", None)
        if event:
            data["event"] = event
        data["message"] = record.getMessage()
        data.update({k: v for k, v in _fields(record).items() if v is not None})
        if record.exc_info and record.exc_info[0] is not None:
            data["error_type"] = record.exc_info[0].__name__
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=json_safe)


class TextFormatter(logging.Formatter):
    """``ts LEVEL event message key=value ...``, the task fields first, in a fixed order."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        ordered = [k for k in _FIELD_ORDER if k in fields] + sorted(k for k in fields if k not in _FIELD_ORDER)
        pairs = " ".join(f"{k}={_text(fields[k])}" for k in ordered if fields[k] is not None)
        event = getattr(record, "event", None)
        head = f"{_timestamp(record)} {record.levelname:<7} "
        head += f"{event} " if event else f"{record.name}: "
        line = head + record.getMessage() + (f" {pairs}" if pairs else "")
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c.isspace() for c in text) or '"' in text) else text


def configure(log_format: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) in the chosen format; quiet chatty libraries."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "aiohttp", "camunda", "git"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    quiet_mlflow_logs(max(level, logging.WARNING))
