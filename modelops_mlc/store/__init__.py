"""The MLC store: SQLAlchemy tables for runtimes, deployments, tickets, notifications and job
records. sqlite under ``$MLC_HOME`` by default, any SQLAlchemy URL (PostgreSQL) by ``MLC_STORE_URL``.

Each feature package declares its tables on :class:`Base`; :func:`open_store` creates the
tables that are missing and hands out sessions.
"""

from modelops_mlc.store.base import Base, Store, open_store, utcnow

__all__ = ["Base", "Store", "open_store", "utcnow"]
