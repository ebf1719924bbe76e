"""The one exception hierarchy of modelops-mlc.

    MlcError                      every error the SDK raises on purpose
    ├── ConfigError               bad settings or mlc.yaml
    ├── UsageError                bad input from a user (file missing, bad key=value, ...)
    ├── NotFoundError             a named thing does not exist
    │   └── ModelNotFoundError    unknown model, version or alias
    ├── EngineError               the Camunda engine answered with an error (status, type, message)
    │   ├── EngineUnavailable     nothing answers at the engine URL
    │   └── EngineAuthError       401/403 from the engine
    ├── LocalEngineError          starting/stopping the local engine process failed
    ├── RegistryError             MLflow refused or failed
    ├── JobError                  an ML job failed (bad data, schema mismatch, ...)
    │   └── MissingDataError      a job's input data (TEST_DATA, TRAINING_DATA, INPUT_FILE) is absent
    ├── RuntimeServiceError       runtime/deployment failures
    ├── TicketError               ticket systems
    ├── BpmnError                 a worker handler's domain failure, thrown to the process
    └── TaskFailed                a worker handler's technical failure, retried by the engine

The CLI maps these to exit codes (``exit_code``); foreign exceptions are converted at the
boundary that meets them, with ``raise ... from``, and ``first_line`` makes any error's text
fit for such a one-line message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BpmnError",
    "ConfigError",
    "DeployFailedError",
    "NoRuntimeError",
    "EngineAuthError",
    "EngineError",
    "EngineUnavailable",
    "JobError",
    "LocalEngineError",
    "MissingDataError",
    "MlcError",
    "ModelNotFoundError",
    "NotFoundError",
    "RegistryError",
    "RuntimeServiceError",
    "TaskFailed",
    "TicketError",
    "UsageError",
    "first_line",
]


def first_line(error: BaseException | str, limit: int | None = None, *, typed: bool = False) -> str:
    """The first non-blank line of an error's message, for a one-line report.

    An exception's ``message`` attribute (MlcError, MlflowException) is preferred to ``str(exc)``;
    an exception with no text gives its type name, empty text gives "". ``typed`` puts the
    exception's type name in front ("KeyError: 'x'"). With ``limit`` the line is cut to at most
    that many characters, ending in "...".
    """
    if isinstance(error, BaseException):
        name = type(error).__name__
        text = str(getattr(error, "message", None) or error).strip()
        line = text.splitlines()[0].strip() if text else name
        if typed and text:
            line = f"{name}: {line}"
    else:
        text = str(error).strip()
        line = text.splitlines()[0].strip() if text else ""
    if limit is not None and len(line) > limit:
        line = line[: limit - 3] + "..." if limit > 3 else line[:limit]
    return line


class MlcError(Exception):
    """Root of every modelops-mlc error; ``message`` is one line fit for a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(MlcError):
    exit_code = 2


class UsageError(MlcError):
    exit_code = 2


class NotFoundError(MlcError):
    exit_code = 4


class ModelNotFoundError(NotFoundError):
    pass


class EngineError(MlcError):
    """The engine refused a request; carries its HTTP status, exception type and message."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        engine_type: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.engine_type = engine_type


class EngineUnavailable(EngineError):
    exit_code = 5


class EngineAuthError(EngineError):
    exit_code = 6


class LocalEngineError(MlcError):
    exit_code = 5


class RegistryError(MlcError):
    pass


class JobError(MlcError):
    pass


class MissingDataError(JobError):
    """A job has no input data to read; workers report it as ``MLC_MISSING_TEST_DATA``."""


class RuntimeServiceError(MlcError):
    pass


class NoRuntimeError(RuntimeServiceError):
    """No registered runtime can take a model; ``reasons`` maps each candidate to its refusal."""

    def __init__(self, message: str, *, reasons: dict[str, str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reasons = dict(reasons or {})


class DeployFailedError(RuntimeServiceError):
    """A runtime could not load or smoke-test a model version."""


class TicketError(MlcError):
    pass


class BpmnError(MlcError):
    """A domain failure a worker reports to the process as a BPMN error (``code`` from DESIGN.md)."""

    def __init__(self, code: str, message: str, *, variables: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.variables = variables or {}


class TaskFailed(MlcError):
    """A technical failure: the engine retries the task (``retry_in`` seconds) unless not retryable."""

    def __init__(self, message: str, *, retryable: bool = True, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_in = retry_in
