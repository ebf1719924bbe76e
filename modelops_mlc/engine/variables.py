"""Python values <-> Camunda typed variables (``{"value": ..., "type": ...}``).

Camunda wants an explicit type for anything that is not a string; JSON-shaped values travel as
the ``Json`` type of the Spin plugin (bundled with our engine), so processes can read them with
``${X.prop("field")}`` and the REST API returns them as text that we parse back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from modelops_mlc.serialize import json_safe

__all__ = ["from_engine", "from_engine_value", "to_engine", "to_engine_value"]

_INT32 = 2**31


def to_engine_value(value: Any) -> dict[str, Any]:
    """One Python value as a Camunda variable object."""
    if value is None:
        return {"value": None, "type": "Null"}
    if isinstance(value, bool):
        return {"value": value, "type": "Boolean"}
    if isinstance(value, int):
        return {"value": value, "type": "Integer" if -_INT32 <= value < _INT32 else "Long"}
    if isinstance(value, float):
        return {"value": value, "type": "Double"}
    if isinstance(value, str):
        return {"value": value, "type": "String"}
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return {"value": value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}" + value.strftime("%z"), "type": "Date"}
    if isinstance(value, (Mapping, list, tuple)):
        return {"value": json.dumps(json_safe(value)), "type": "Json"}  # no NaN: the engine's parser refuses it
    if hasattr(value, "item"):  # numpy scalars
        return to_engine_value(value.item())
    return {"value": str(value), "type": "String"}


def to_engine(variables: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A mapping of Python values as Camunda's ``variables`` object."""
    return {name: to_engine_value(v) for name, v in (variables or {}).items()}


def from_engine_value(var: Mapping[str, Any]) -> Any:
    """One Camunda variable object (runtime or history shape) as a Python value."""
    vtype = (var.get("type") or "").lower()
    value = var.get("value")
    if vtype == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if vtype == "object" and isinstance(value, str):
        info = var.get("valueInfo") or {}
        if "json" in str(info.get("serializationDataFormat", "")):
            try:
                return json.loads(value)
            except ValueError:
                return value
    return value


def from_engine(variables: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """Camunda's ``variables`` object as a dict of Python values."""
    return {name: from_engine_value(v) for name, v in (variables or {}).items()}
