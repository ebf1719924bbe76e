"""Engine, sessions and the declarative base of the MLC store."""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from modelops_mlc.errors import ConfigError, MlcError, first_line

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Base", "Store", "open_store", "utcnow"]

# Modules that declare tables on Base; imported before create_all so every table exists.
# A feature package adds its models module here.
MODEL_MODULES: list[str] = [
    "modelops_mlc.runtimes.models",
    "modelops_mlc.tickets.models",
    "modelops_mlc.monitoring.models",
    "modelops_mlc.monitoring.seen",
    "modelops_mlc.retraining.models",
    "modelops_mlc.insight.audit",
]


class Base(DeclarativeBase):
    """Declarative base for every table of the MLC store."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Store:
    """A connected MLC store: ``with store.session() as s: ...`` commits on success."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._sessions()
        try:
            yield s
            s.commit()
        except SQLAlchemyError as exc:
            s.rollback()
            raise MlcError(_store_error(self.engine, exc)) from exc
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


# sqlite's own words for a store it cannot write, and what they mean for the user
_SQLITE_FAULTS = {
    "database is locked": "is locked by another writer (waited {timeout} s); try again when it is done",
    "database or disk is full": "has no space left on its disk; nothing was written",
    "readonly database": "is read-only; nothing was written",
}
SQLITE_BUSY_TIMEOUT_S = 30


def _store_error(engine: Engine, exc: SQLAlchemyError) -> str:
    """One line for a failed store operation; a locked, full or read-only sqlite file says so."""
    text = str(getattr(exc, "orig", None) or exc)
    if engine.dialect.name == "sqlite":
        for words, meaning in _SQLITE_FAULTS.items():
            if words in text:
                return f"the MLC store {engine.url.database} " + meaning.format(timeout=SQLITE_BUSY_TIMEOUT_S)
    return f"MLC store error: {first_line(exc, typed=True)}"


_STORES: dict[str, Store] = {}


_SCHEMA_LOCK = 0x6D6C63  # "mlc": the advisory lock that serialises create_all on PostgreSQL


def _create_all(engine: Engine) -> None:
    """Create missing tables. On PostgreSQL, daemons starting together would deadlock in each
    other's CREATE TABLE (or collide on the type catalogue); a transaction-scoped advisory lock
    lets one create and the others then find the tables."""
    if engine.dialect.name != "postgresql":
        Base.metadata.create_all(engine)
        return
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        Base.metadata.create_all(conn)


def open_store(settings: "Settings") -> Store:
    """Connect to the store named by ``settings.store_url`` (cached per URL) and create missing tables."""
    url = settings.store_url
    if url in _STORES:
        return _STORES[url]
    for module in MODEL_MODULES:
        importlib.import_module(module)
    kwargs: dict = {}
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # bad URL, missing driver: one line for the user
        from modelops_mlc.config import redact_url

        raise ConfigError(f"cannot open MLC store {redact_url(url)!r}: {redact_url(str(exc))}") from exc
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    for attempt in range(6):
        try:
            _create_all(engine)
            break
        except SQLAlchemyError as exc:
            # Daemons starting together race between create_all's check and its CREATE TABLE;
            # the loser retries and then finds the tables there.
            if "already exists" in str(exc) and attempt < 5:
                time.sleep(0.1 * (attempt + 1))
                continue
            raise MlcError(f"cannot initialise MLC store {url!r}: {first_line(exc)}") from exc
    store = Store(engine)
    _STORES[url] = store
    return store
