"""An isolated installation for a test module: its own MLC_HOME with its MLC store and MLflow
registry (sqlite), on a given engine, as the environment of the processes the test starts and as
the ``Settings`` of the test process itself."""

from __future__ import annotations

import os
from pathlib import Path

from modelops_mlc.config import Settings


def home_env(home: Path, engine_url: str, **extra: str) -> dict[str, str]:
    """``os.environ`` without any MLC_/MLFLOW_ setting of the caller's, pointed at ``home``; ``extra`` wins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "MLFLOW_"))}
    env.update({
        "MLC_HOME": str(home),
        "MLC_ENGINE_URL": engine_url,
        "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLC_ENGINE_AUTH": "none",
        "COLUMNS": "200",
    })
    env.update(extra)
    return env


def home_settings(env: dict[str, str]) -> Settings:
    """The ``Settings`` the processes started with ``env`` see."""
    return Settings(home=Path(env["MLC_HOME"]), engine_url=env["MLC_ENGINE_URL"], store_url=env["MLC_STORE_URL"],
                    mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"], engine_auth=env["MLC_ENGINE_AUTH"])
