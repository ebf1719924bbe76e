"""Durations: ISO-8601 (``PT10M``, ``P1D``) as the engine's timers read them, parsed by pydantic, and the
short form the CLI takes (``30s``, ``15m``, ``1h30m``, ``7d``, ``2w``), which no library parses the way
the flags read it (pydantic's timedelta takes ISO and ``[-][DD]D[,][HH:MM:]SS``, not ``7d``)."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["duration_seconds", "iso_duration_seconds"]

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORT = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
HINT = "for example 30m, 6h, 1h30m, 30d, 2w or an ISO-8601 duration such as P30D"


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


def duration_seconds(text: str) -> float:
    """Seconds of a short-form duration (``30s``, ``15m``, ``1.5h``, ``1h30m``, ``7d``, ``2w``) or of an
    ISO-8601 one (``PT6H``, ``P30D``); anything else, a zero or a negative duration is a :class:`UsageError`."""
    value = str(text).strip().lower().replace(" ", "")
    if value.startswith("p"):
        return iso_duration_seconds(str(text))
    if not _SHORT.match(value):
        raise UsageError(f"{text!r} is not a duration", hint=HINT)
    seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise UsageError(f"{text!r} is not a positive duration", hint=HINT)
    return seconds
