"""One Settings object for the SDK, the CLI and the daemons.

Values come from, lowest first: defaults, ``mlc.yaml`` in the working directory,
``MLC_*`` environment variables (``MLFLOW_TRACKING_URI`` for MLflow), then the
keyword overrides an entry point passes (its command-line flags).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "load_settings", "redact_url"]

_YAML_FILE = "mlc.yaml"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``mlc.yaml`` from the working directory when it exists (lower priority than env)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = Path(os.environ.get("MLC_CONFIG_FILE", _YAML_FILE))
        if path.is_file():
            import yaml  # only when a file is there: keeps `mlc --help` light

            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                from modelops_mlc.errors import ConfigError

                raise ConfigError(f"{path} must hold a mapping of setting names to values")
            self._data = {str(k).lower(): v for k, v in loaded.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


_URL_PASSWORD = re.compile(r"(?P<keep>//[^/:@\s]*:)[^/\s]+(?=@)|(?P<param>[?&;]password=)[^&;\s]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` fit for a log or an error: the password of ``user:password@`` and of a
    ``password=`` parameter replaced by ``***`` (database URLs carry them)."""
    return _URL_PASSWORD.sub(lambda m: (m.group("keep") or m.group("param")) + "***", url)


def url_without_password(url: str) -> str:
    """``url`` fit for a file on disk: the passwords :func:`redact_url` masks removed instead
    (``user:password@`` becomes ``user@``, a ``password=`` parameter goes, the rest unchanged)."""

    def drop(m: re.Match[str]) -> str:
        if m.group("keep"):
            return m.group("keep")[:-1]  # `//user:` -> `//user`, before the `@`
        return "?" if m.group("param")[0] == "?" else ""  # the query's first parameter keeps its `?`

    cleaned = _URL_PASSWORD.sub(drop, url)
    return re.sub(r"\?[&;]", "?", cleaned, count=1).removesuffix("?")  # `?&a=1` -> `?a=1`, a bare `?` goes


def is_loopback(host: str) -> bool:
    """The address (or every address a name resolves to) is a loopback one."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in found)


def client_host(host: str) -> str:
    """Where a client on this machine reaches an engine bound to ``host``."""
    if host in ("0.0.0.0", "::", "[::]", "") or is_loopback(host):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Settings(BaseSettings):
    """Public configuration of modelops-mlc; the names are documented in DESIGN.md and README.md."""

    model_config = SettingsConfigDict(env_prefix="MLC_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".mlc")

    engine_url: str = ""
    engine_port: int = 8080
    engine_host: str = "127.0.0.1"  # address `mlc engine start` binds; off loopback it needs auth (docs/security.md)
    engine_auth: Literal["none", "basic", "bearer"] = "none"
    engine_user: str = "demo"
    engine_password: SecretStr = SecretStr("demo")
    engine_token: SecretStr | None = None
    engine_jdbc_url: str | None = None
    engine_jdbc_user: str | None = None
    engine_jdbc_password: SecretStr | None = None
    engine_start_timeout: float = 180.0
    engine_request_timeout: float = 30.0

    store_url: str = ""
    postgres_url: str | None = None  # one database for the engine, the MLC store and MLflow (modelops_mlc/postgres.py)
    mlflow_tracking_uri: str = Field(
        default="", validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri")
    )

    ticket_system: Literal["local", "jira", "servicenow"] = "local"
    webhook_url: str | None = None
    ticket_request_timeout: float = 15.0
    ticket_watch_interval: float = 30.0
    ticket_watch_max_backoff: float = 300.0
    jira_url: str | None = None
    jira_project: str | None = None
    jira_issue_type: str = "Task"
    jira_user: str | None = None
    jira_token: SecretStr | None = None
    jira_bearer_token: SecretStr | None = None
    jira_status_map: dict[str, str] = Field(default_factory=dict)
    servicenow_url: str | None = None
    servicenow_user: str | None = None
    servicenow_password: SecretStr | None = None
    servicenow_token: SecretStr | None = None
    runtime_admin_token: SecretStr | None = None
    runtime_heartbeat_interval: float = 5.0
    runtime_missed_heartbeats: int = 3
    runtime_reconcile_interval: float = 2.0
    runtime_deploy_timeout: float = 120.0
    runtime_microbatch: bool = True  # requests that arrive together share one model call (runtimes/batching.py)
    # how long the prediction log and its labels are kept (30d, P30D); None keeps them all. The model
    # server prunes once an hour; `mlc predictions prune` does it on demand (runtimes/feedback.py prune)
    prediction_retention: str | None = None
    webhook_secret: SecretStr | None = None  # HMAC secret of the MLflow webhook receiver (`mlc webhook`)
    webhook_port: int = 8092
    mlflow_port: int = 5000  # `mlc up --mlflow-server`

    @model_validator(mode="after")
    def _derive(self) -> "Settings":
        self.home = Path(self.home).expanduser()
        if not self.engine_url:
            self.engine_url = f"http://{client_host(self.engine_host)}:{self.engine_port}/engine-rest"
        # several comma-separated URLs: the nodes of one engine cluster (engine/gateway.py Nodes)
        self.engine_url = ",".join(u.strip().rstrip("/") for u in self.engine_url.split(",") if u.strip())
        if self.postgres_url:
            from modelops_mlc.postgres import backends

            for name, value in backends(self.postgres_url).items():
                if value and not getattr(self, name):
                    setattr(self, name, SecretStr(value) if name == "engine_jdbc_password" else value)
        if not self.store_url:
            self.store_url = f"sqlite:///{self.home / 'mlc.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
        if self.prediction_retention:
            from modelops_mlc.durations import HINT
            from modelops_mlc.errors import ConfigError, UsageError

            try:
                self.prediction_retention_s
            except UsageError:
                raise ConfigError(f"MLC_PREDICTION_RETENTION {self.prediction_retention!r} is not a duration",
                                  hint=HINT) from None
        return self

    @property
    def prediction_retention_s(self) -> float | None:
        """``prediction_retention`` in seconds (None: keep everything)."""
        from modelops_mlc.durations import duration_seconds

        if not self.prediction_retention:
            return None
        return duration_seconds(self.prediction_retention)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def artifacts_dir(self) -> Path:
        """Where the embedded MLflow registry keeps artifacts."""
        return self.home / "mlartifacts"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def load_settings(**overrides: Any) -> Settings:
    """Build Settings once per entry point; ``None`` overrides are ignored so flags can default."""
    from pydantic import ValidationError

    from modelops_mlc.errors import ConfigError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
