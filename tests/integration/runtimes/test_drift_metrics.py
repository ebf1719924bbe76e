"""A model server exports the monitor's drift figures of the models it serves: after a monitor run is
recorded in the MLC store, `/metrics` shows `mlc_drift_psi` for each of the run's features with the
recorded PSI and `mlc_monitor_verdict` for its verdict; a runtime of two processes reports them once,
not summed over the processes.

The tests of this module share one installation (see conftest.py).
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops_mlc.monitoring.history import FeatureResult, MonitorRun, record_run
from modelops_mlc.registry import Registry
from modelops_mlc.runtimes import DeploymentManager

pytestmark = pytest.mark.slow

PSI = {"mean radius": 0.231, "mean texture": 0.042, "prediction": 0.118}


@pytest.fixture(scope="module")
def monitored(stack):
    """bc/1 deployed on runtime `drift` (one process) and `drift2` (two), and a monitor run of bc/1 recorded
    the way the monitor worker records it."""
    one = stack.serve("drift", "stage=DRIFT", "tag=credit")
    two = stack.serve("drift2", "stage=DRIFT2", "tag=credit", options=("--workers", "2"))
    manager = DeploymentManager(stack.settings)
    manager.deploy("bc", "1", "DRIFT")
    manager.deploy("bc", "1", "DRIFT2")
    features = [FeatureResult(feature=name, kind="prediction" if name == "prediction" else "data", psi=psi)
                for name, psi in PSI.items()]
    record_run(stack.settings, Registry(stack.settings),
               MonitorRun(model_id="bc", model_version="1", trigger="manual", verdict="investigate",
                          reason="PSI 0.231 of feature mean radius above 0.2", max_psi=0.231,
                          max_psi_feature="mean radius", prediction_psi=0.118, features=features),
               dedupe_key="drift-metrics-test:1")
    return {"one": one, "two": two}


def _samples(endpoint: str, name: str) -> list:
    text = httpx.get(f"{endpoint}/metrics", timeout=10).text
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def _psi_when_shown(endpoint: str, timeout: float = 30) -> list:
    """The mlc_drift_psi samples of model bc, once the server has read the run (it caches the store for a few
    seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in _samples(endpoint, "mlc_drift_psi") if s.labels.get("model") == "bc"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.parametrize("runtime", ["one", "two"])
def test_metrics_show_the_psi_of_the_latest_monitor_run(monitored, runtime):
    endpoint = monitored[runtime].endpoint
    found = _psi_when_shown(endpoint)
    assert sorted((s.labels["feature"], s.labels["version"], s.value) for s in found) == sorted(
        (feature, "1", psi) for feature, psi in PSI.items())
    for _ in range(4):  # whichever process answers, each series once and with the recorded value
        verdicts = [(s.labels, s.value) for s in _samples(endpoint, "mlc_monitor_verdict")]
        assert verdicts == [({"model": "bc", "version": "1", "verdict": "investigate"}, 1.0)]


def test_a_newer_run_replaces_the_figures(stack, monitored):
    record_run(stack.settings, Registry(stack.settings),
               MonitorRun(model_id="bc", model_version="1", trigger="manual", verdict="ok", max_psi=0.01,
                          features=[FeatureResult(feature="mean radius", psi=0.01)]),
               dedupe_key="drift-metrics-test:2")
    endpoint = monitored["one"].endpoint
    deadline = time.monotonic() + 30
    while True:
        found = {s.labels["feature"]: s.value for s in _psi_when_shown(endpoint)}
        if found == {"mean radius": 0.01} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == {"mean radius": 0.01}
    assert [s.labels["verdict"] for s in _samples(endpoint, "mlc_monitor_verdict")] == ["ok"]
