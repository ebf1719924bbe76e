"""Plain JSON data from the values results, tags, variables and records hold.

The one conversion the SDK, the CLI and the workers use before writing JSON that a strict parser
(Camunda's, a browser's) must read back: no NaN, no numpy, no dates, no objects JSON lacks.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: str, int, float, bool, None, lists and str-keyed dicts.

    NaN and infinities become None; numpy scalars and arrays become Python numbers and lists;
    dates, times and datetimes become ISO text (NaT becomes None); enums their value; pydantic
    models their JSON dump; mappings get str keys; tuples and sets become lists; anything else
    becomes ``str(value)``. Also fit as ``json.dumps(..., default=json_safe)``.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, float):  # numpy's float64 too
        return float(value) if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date; pandas' NaT is a datetime
        return None if value != value else value.isoformat()
    np = sys.modules.get("numpy")  # a numpy value means numpy is loaded: never import it here
    if np is not None:
        if isinstance(value, np.ndarray):
            return json_safe(value.tolist())
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else str(value)
        if isinstance(value, np.generic):
            return json_safe(value.item())
    if hasattr(value, "model_dump"):  # pydantic models, without importing pydantic
        return json_safe(value.model_dump(mode="json"))
    return str(value)
