"""MLC store table of the files a new-data watcher has fired the monitor for.

A row is written as ``pending`` before the signal goes out and turned ``fired`` after the engine
took it, so a watcher killed in between finds the pending row on restart and asks the engine's
history (variable ``MLC_TRIGGER_ID``) whether the signal got there before firing again.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelops_mlc.store import Base, utcnow

__all__ = ["FIRED", "PENDING", "SeenFileRow", "seen_key"]

PENDING = "pending"
FIRED = "fired"


def seen_key(model_id: str, path: str, fingerprint: str) -> str:
    """One key per (model, file, content): the same file written again with new content is new data."""
    return hashlib.sha256(f"{model_id}\0{path}\0{fingerprint}".encode()).hexdigest()


class SeenFileRow(Base):
    """A data file a watcher fired (or is firing) ``mlc.monitor`` for."""

    __tablename__ = "mlc_watch_seen_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    folder: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))  # "<size>:<mtime_ns>"
    trigger_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    fired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
