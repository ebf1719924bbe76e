"""One PostgreSQL URL for the three databases of an installation: the engine's (JDBC), the MLC
store's and MLflow's (SQLAlchemy, psycopg 3), all in the one database the URL names.

Their tables do not meet: the engine's start with ``act_``, the MLC store's with ``mlc_``, and
MLflow keeps its own with its ``alembic_version``. ``MLC_POSTGRES_URL`` (or ``mlc up --postgres``)
fills in whichever of ``MLC_ENGINE_JDBC_URL``/``_USER``/``_PASSWORD``, ``MLC_STORE_URL`` and
``MLFLOW_TRACKING_URI`` are not set on their own.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from modelops_mlc.errors import ConfigError

__all__ = ["backends"]

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def backends(url: str) -> dict[str, str | None]:
    """The settings ``url`` (``postgresql://user:password@host:5432/database``) stands for."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"MLC_POSTGRES_URL must start with postgresql://, got {parts.scheme or 'no scheme'}://",
                          hint="postgresql://USER:PASSWORD@HOST:5432/DATABASE")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or "/" in database:
        raise ConfigError("MLC_POSTGRES_URL must name a host and one database",
                          hint="postgresql://USER:PASSWORD@HOST:5432/DATABASE")
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError("MLC_POSTGRES_URL has an invalid port") from None
    query = f"?{parts.query}" if parts.query else ""
    sqlalchemy = f"postgresql+psycopg://{parts.netloc}/{database}{query}"
    return {
        "engine_jdbc_url": f"jdbc:postgresql://{parts.hostname}:{port}/{database}{query}",
        "engine_jdbc_user": unquote(parts.username) if parts.username else None,
        "engine_jdbc_password": unquote(parts.password) if parts.password else None,
        "store_url": sqlalchemy,
        "mlflow_tracking_uri": sqlalchemy,
    }
