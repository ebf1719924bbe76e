"""ISO-8601 durations (``PT10M``, ``P1D``) as the engine's timers read them, parsed by pydantic."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["iso_duration_seconds"]


@lru_cache(maxsize=1)
def _adapter() -> "TypeAdapter[dt.timedelta]":
    from pydantic import TypeAdapter

    return TypeAdapter(dt.timedelta)


def iso_duration_seconds(text: str) -> float:
    """Seconds of an ISO-8601 duration (months count 30 days, years 365, as pydantic reads them);
    anything else, a zero or a negative duration is a :class:`UsageError`."""
    from pydantic import ValidationError

    value = text.strip().upper()
    try:
        if not value.startswith("P"):
            raise ValueError
        seconds = _adapter().validate_python(value).total_seconds()
    except (ValueError, ValidationError):
        raise UsageError(f"{text!r} is not an ISO-8601 duration", hint="for example PT30S, PT10M, PT6H or P1D") from None
    if seconds <= 0:
        raise UsageError(f"{text!r} is not a positive duration", hint="for example PT30S, PT10M, PT6H or P1D")
    return seconds
