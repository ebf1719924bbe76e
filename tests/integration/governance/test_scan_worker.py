"""The security scan as a step of mlc-productionize, served by a real `mlc worker start` against a
real MLflow registry: a model whose pickle's __reduce__ calls os.system is rejected with a ticket
that lists the finding and goes no further; a clean model passes and is handed to its process."""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.engine import EngineClient
from tests.support.home import home_env, home_settings
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("mlc_wt_support", ROOT / "tests/integration/workers/wt_support.py")
wt_support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wt_support)


class Malicious:
    """Unpickling this runs a shell command; nothing here unpickles it."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/mlc-scan-worker-pwned",))


@pytest.fixture(scope="module")
def stack(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A worker for mlc-productionize's tasks only, its MLC home, settings and engine client."""
    home = tmp_path_factory.mktemp("gov-scan")
    env = home_env(home, engine.url)
    settings = home_settings(env)
    client = EngineClient(settings)
    client.deploy_processes([ROOT / "bpmn"], name="mlc-governance-tests")
    worker = wt_support.WorkerProcess(env, home, ["--process-key", "mlc-productionize", "--long-poll", "1000",
                                                  "--retries", "0"], home / "worker.log")
    try:
        yield {"settings": settings, "client": client, "worker": worker.wait_ready(), "home": home}
        assert worker.terminate() == 0
    finally:
        worker.close()
        client.close()


@pytest.fixture(scope="module")
def models(stack: dict[str, Any], estimator: Any) -> dict[str, str]:
    """A clean scikit-learn model and the same model with its model.pkl replaced by the malicious pickle."""
    from importlib.metadata import version

    import mlflow.sklearn

    from modelops_mlc.registry import Registry

    clean = stack["home"] / "clean"
    pins = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "cloudpickle", "numpy")]
    mlflow.sklearn.save_model(estimator, str(clean), serialization_format="cloudpickle",
                              pip_requirements=pins)
    malicious = stack["home"] / "malicious"
    shutil.copytree(clean, malicious)
    (malicious / "model.pkl").write_bytes(pickle.dumps(Malicious()))
    registry = Registry(stack["settings"])
    names = {"clean": f"gov-clean-{uuid.uuid4().hex[:6]}", "malicious": f"gov-evil-{uuid.uuid4().hex[:6]}"}
    registry.register(names["clean"], path=clean)
    registry.register(names["malicious"], path=malicious)
    return names


@pytest.fixture(scope="module")
def estimator() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def router(client: EngineClient, name: str) -> str:
    client.signal("mlc.model-submitted", {"MODEL_ID": name, "MODEL_VERSION": 1, "SUBMITTED_BY": "alice"})
    return wait_for(lambda: [i.id for i in client.instances(model_id=name, process_key="mlc-productionize")],
                    what=f"mlc-productionize of {name}")[0]


def test_the_malicious_pickle_is_rejected_with_a_ticket_listing_the_finding(stack, models) -> None:
    from modelops_mlc.registry import Registry
    from modelops_mlc.tickets import get_ticket_system

    client, name = stack["client"], models["malicious"]
    pid = router(client, name)
    wait_for(lambda: client.history_instance(pid).state != "ACTIVE", what=f"{pid} to end")
    ends = [a.activity_id for a in client.history_activities(pid) if a.activity_type == "noneEndEvent"]
    assert ends == ["end_rejected"]
    variables = client.variables(pid)
    assert variables["SCAN_PASSED"] is False
    assert [(f["kind"], f["file"]) for f in variables["SCAN_FINDINGS"]] == [("unsafe-pickle", "model.pkl")]
    [ticket] = get_ticket_system(stack["settings"], "local").search(model_id=name)
    assert "unsafe-pickle in model.pkl" in ticket.title + ticket.description
    assert f"MLflow run: {variables['SCAN_RUN_ID']}" in ticket.description
    assert not client.instances(model_id=name, process_key="mlc-deploy-with-test")  # never handed on
    assert Registry(stack["settings"]).get_version(f"{name}/1").tags["security_scan"] == "failed"
    assert not Path("/tmp/mlc-scan-worker-pwned").exists()


def test_the_clean_model_passes_and_goes_down_its_process(stack, models) -> None:
    client, name = stack["client"], models["clean"]
    pid = router(client, name)
    child = wait_for(lambda: client.instances(model_id=name, process_key="mlc-deploy-with-test"),
                     what=f"mlc-deploy-with-test of {name}")
    variables = client.variables(pid)
    assert variables["SCAN_PASSED"] is True and variables["SCAN_FINDINGS"] == []
    assert variables["PRODUCTIONIZE_PROCESS"] == "mlc-deploy-with-test"
    assert child[0].business_key == f"{name}:1"
    client.request("DELETE", f"/process-instance/{pid}")  # the review would wait for a person
