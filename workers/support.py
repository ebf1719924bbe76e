"""What the built-in handlers share: the model a task acts on, and SDK errors as BPMN outcomes.

Domain failures the processes model become ``BpmnError`` with the contract's codes; failures
worth retrying (a registry or store hiccup) become ``TaskFailed``, so the engine retries them
and raises an incident at the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelops_mlc.errors import (
    BpmnError,
    JobError,
    MissingDataError,
    MlcError,
    ModelNotFoundError,
    NotFoundError,
    RegistryError,
    TaskFailed,
    UsageError,
)
from workers.handlers import TaskContext
from workers.variables import (
    MLC_JOB_FAILED,
    MLC_MISSING_TEST_DATA,
    MLC_MODEL_NOT_FOUND,
    MODEL_ID,
    MODEL_VERSION,
)

__all__ = ["finite", "job_errors", "model_name", "model_spec", "version_spec"]


def version_spec(name: str, version: Any) -> str:
    """``name/3`` for a number (``3``, ``"3"``, ``3.0``), ``name@champion`` for an alias."""
    text = str(version).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if text.isdigit():
        return f"{name}/{int(text)}"
    return f"{name}@{text.lstrip('@')}"


def model_spec(ctx: TaskContext, *, version_var: str = MODEL_VERSION) -> str:
    """The model id a task names: MODEL_ID as given when it carries a version or alias, else
    MODEL_ID plus ``version_var`` (a number or an alias), else the plain name (latest version)."""
    from modelops_mlc.registry import parse_model_id

    raw = str(ctx.require(MODEL_ID)).strip()
    try:
        name, version, alias = parse_model_id(raw)
    except UsageError as exc:
        raise BpmnError(MLC_MODEL_NOT_FOUND, exc.message) from None
    if version is not None or alias is not None:
        return raw
    wanted = ctx.get(version_var)
    if wanted is None or str(wanted).strip() == "":
        return name
    return version_spec(name, wanted)


def model_name(ctx: TaskContext) -> str:
    from modelops_mlc.registry import parse_model_id

    try:
        return parse_model_id(str(ctx.require(MODEL_ID)))[0]
    except UsageError as exc:
        raise BpmnError(MLC_MODEL_NOT_FOUND, exc.message) from None


@contextmanager
def job_errors(*, missing_code: str = MLC_MISSING_TEST_DATA) -> Iterator[None]:
    """Map the SDK's errors: unknown model, missing data and failed jobs are the process's to handle."""
    try:
        yield
    except (BpmnError, TaskFailed):
        raise
    except ModelNotFoundError as exc:
        raise BpmnError(MLC_MODEL_NOT_FOUND, exc.message) from exc
    except MissingDataError as exc:
        raise BpmnError(missing_code, exc.message) from exc
    except JobError as exc:
        raise BpmnError(MLC_JOB_FAILED, exc.message) from exc
    except NotFoundError as exc:
        raise BpmnError(MLC_MODEL_NOT_FOUND, exc.message) from exc
    except UsageError as exc:  # bad input from the process (a path, a parameter): the job cannot run
        raise BpmnError(MLC_JOB_FAILED, exc.message) from exc
    except RegistryError as exc:  # MLflow storage or server trouble: worth retrying
        raise TaskFailed(exc.message) from exc
    except MlcError as exc:
        raise TaskFailed(exc.message) from exc


def finite(value: Any) -> float | None:
    """A metric as a float the engine can store (NaN and infinities are dropped)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


