"""One switch puts everything on PostgreSQL: `mlc up --postgres URL --mlflow-server`, on the
cluster's database, runs the worker, runtime and watchers with the MLC store there and a real
``mlflow server`` with its backend store there and a local artifact root; the engine nodes
already keep their tables there. A life cycle run by the stack's worker leaves its notification
in PostgreSQL, where `mlc alerts` reads it back.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from modelops_mlc.engine import EngineClient
from tests.conftest import free_port, mlc_command
from tests.support.waiting import wait_for

HERE = Path(__file__).resolve().parent
KEY = "test-cluster-lifecycle"


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_mlc_up_postgres_puts_the_store_and_an_mlflow_server_on_the_engines_database(cluster, cluster_env, tmp_path):
    url = cluster.settings.postgres_url
    mlflow_port = free_port()
    env = {k: v for k, v in cluster_env.items() if k not in ("MLC_STORE_URL", "MLFLOW_TRACKING_URI")}
    env.update({"MLC_MLFLOW_PORT": str(mlflow_port), "MLC_WEBHOOK_PORT": str(free_port()),
                "MLC_RUNTIME_PORT": str(free_port()), "MLC_WEBHOOK_SECRET": uuid.uuid4().hex})

    def mlc(*args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mlc_command(), *args], env={**env, **extra}, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)

    up = mlc("up", "--postgres", url, "--mlflow-server", "--bpmn", str(HERE), "--json", timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        parts = {p["name"]: p for p in json.loads(up.stdout)}
        assert parts["mlflow-server"]["healthy"] and parts["worker"]["healthy"]

        with EngineClient(cluster.settings) as client:
            started = client.start(KEY, {"MODEL_ID": "pg-stack", "RUN": uuid.uuid4().hex[:8]}).id
            wait_for(lambda: client.history_instance(started).state == "COMPLETED", timeout=120,
                     what="the stack's worker to finish the life cycle")
        alerts = mlc("alerts", "--model-id", "pg-stack", "--json", MLC_POSTGRES_URL=url)
        assert alerts.returncode == 0, alerts.stderr
        assert started in {a["process_instance_id"] for a in json.loads(alerts.stdout)}

        import mlflow

        server = f"http://127.0.0.1:{mlflow_port}"
        client = mlflow.MlflowClient(tracking_uri=server, registry_uri=server)
        client.create_registered_model("pg-stack-model")
        experiment = client.create_experiment(f"pg-stack-{uuid.uuid4().hex[:6]}")
        run = client.create_run(experiment)
        (tmp_path / "note.txt").write_text("artifact")
        client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))

        sql_url = cluster.settings.store_url  # the one database, as SQLAlchemy reaches it
        assert ("pg-stack-model",) in _rows(sql_url, "SELECT name FROM registered_models")
        assert _rows(sql_url, f"SELECT count(*) FROM mlc_notifications WHERE process_instance_id = '{started}'") == [(1,)]
        assert _rows(sql_url, "SELECT count(*) FROM act_ge_property")[0][0] > 0  # the engine's schema, by the engine
        artifact_root = Path(env["MLC_HOME"]) / "mlartifacts"
        assert any(p.name == "note.txt" for p in artifact_root.rglob("note.txt"))
    finally:
        down = mlc("down")
        assert down.returncode == 0, down.stderr
