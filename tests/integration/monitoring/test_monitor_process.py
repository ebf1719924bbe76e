"""mlc-monitor on the real engine with a real worker and MLflow: drifted data raises the verdict its
figures call for (a ticket, a retrain), undrifted data raises nothing, and every run is in the
history, the MLC store and MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest


pytestmark = pytest.mark.slow
FEATURES = [f"f{i}" for i in range(8)]


def shifted(data: dict[str, Any], name: str, feature: str, by: float, *, labels: bool) -> Path:
    """A copy of the current data with ``feature`` moved by ``by``."""
    frame = data["current"].copy()
    frame[feature] = frame[feature] + by
    if not labels:
        frame = frame.drop(columns=["target"])
    path = data["dir"] / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def shift_for_psi(data: dict[str, Any], feature: str, wanted: float) -> float:
    """The shift of ``feature`` that gives a PSI closest to ``wanted`` against the training data."""
    from modelops_mlc.jobs import drift

    reference = data["train"][[feature]]
    best = min(np.linspace(0.0, 1.5, 151), key=lambda by: abs(
        drift(reference, data["current"][[feature]] + by).features[0].psi - wanted))
    return float(best)


def run(installation: Any, model: str, current: Path) -> dict[str, Any]:
    r = installation.mlc("monitor", "run", model, "--data", current, "--wait", "--timeout", "240", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def tickets(installation: Any, model: str) -> list[dict[str, Any]]:
    r = installation.mlc("ticket", "list", "--model-id", model, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def alerts(installation: Any, model: str) -> list[dict[str, Any]]:
    r = installation.mlc("alerts", "--model-id", model, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def outcomes(installation, worker, model, data) -> dict[str, dict[str, Any]]:
    """Three monitor runs of the model, in this order: undrifted, one feature drifted, strongly drifted."""
    by = shift_for_psi(data, "f6", 0.225)  # a noise feature: the model's outputs hardly move
    runs = {"ok": data["paths"]["current"],
            "investigate": shifted(data, "investigate", "f6", by, labels=False),
            "retrain": shifted(data, "retrain", "f0", 3.0, labels=True)}
    found = {}
    for name, current in runs.items():
        found[name] = {**run(installation, model, current), "current": current}
        found[name]["tickets"] = [t for t in tickets(installation, model)
                                  if t["process_instance_id"] == found[name]["instance_id"]]
        found[name]["alerts"] = [a for a in alerts(installation, model)
                                 if a["process_instance_id"] == found[name]["instance_id"]]
    return found


def test_undrifted_data_raises_no_verdict_and_no_ticket(installation, outcomes) -> None:
    outcome = outcomes["ok"]
    assert outcome["state"] == "COMPLETED"
    assert (outcome["verdict"], outcome["end_event"]) == ("ok", "end_ok"), outcome
    assert "below 0.1" in outcome["reason"]
    assert outcome["tickets"] == [] and outcome["alerts"] == []
    variables = installation.client.variables(outcome["instance_id"])
    assert variables["HAS_LABELS"] is True
    assert abs(variables["MONITOR_ACCURACY_DROP"]) < 0.05  # labels present: compared with the recorded test


def test_drifted_feature_opens_an_investigation_ticket_quoting_the_figures(installation, outcomes) -> None:
    outcome = outcomes["investigate"]
    assert (outcome["verdict"], outcome["end_event"]) == ("investigate", "end_investigating"), outcome
    assert "of feature f6 above 0.2" in outcome["reason"]
    (ticket,) = outcome["tickets"]
    assert "mlc-investigation" in ticket["labels"]
    text = ticket["title"] + ticket["description"]
    psi = installation.client.variables(outcome["instance_id"])["MONITOR_MAX_PSI"]
    assert 0.2 < psi <= 0.25 and f"{psi:.3f}" in text and "f6" in text
    assert outcome["alerts"] == []


def test_strong_drift_with_labels_signals_retrain(installation, model, outcomes) -> None:
    outcome = outcomes["retrain"]
    assert (outcome["verdict"], outcome["end_event"]) == ("retrain", "end_retrain"), outcome
    variables = installation.client.variables(outcome["instance_id"])
    assert variables["MONITOR_MAX_PSI"] > 0.25 and variables["MONITOR_MAX_PSI_FEATURE"] == "f0"
    assert variables["TRAINING_DATA"] == str(outcome["current"].resolve()) and variables["RETRAIN_TRIGGER"] == "monitor"
    assert outcome["tickets"] == []
    (alert,) = outcome["alerts"]
    assert alert["level"] == "warning" and "asks for retraining" in alert["message"]
    acts = [a.activity_id for a in installation.client.history_activities(outcome["instance_id"])]
    assert "throw_retrain" in acts
    if installation.client.process_definitions(key="mlc-retrain"):  # the retrain process got the signal
        started = installation.client.instances(process_key="mlc-retrain", model_id=model)
        assert len(started) == 1
        assert installation.client.variables(started[0].id)["RETRAIN_TRIGGER"] == "monitor"


def test_every_run_is_in_the_history_the_store_and_mlflow(installation, model, outcomes) -> None:
    from modelops_mlc.registry import Registry

    r = installation.mlc("monitor", "history", model, "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)
    assert [x["verdict"] for x in runs] == ["ok", "investigate", "retrain"]  # oldest first
    assert [x["process_instance_id"] for x in runs] == [outcomes[v]["instance_id"] for v in ("ok", "investigate", "retrain")]
    assert {f["feature"] for f in runs[-1]["features"]} == {*FEATURES, "prediction"}
    assert runs[-1]["trigger"] == "cli" and runs[-1]["max_psi_feature"] == "f0"
    registry = Registry(installation.settings)
    mlflow_run = registry.client.get_run(runs[-1]["mlflow_run_id"])
    assert mlflow_run.data.tags["mlc.kind"] == "monitor" and mlflow_run.data.tags["mlc.monitor_verdict"] == "retrain"
    assert mlflow_run.data.metrics["max_psi"] == pytest.approx(runs[-1]["max_psi"])
    assert mlflow_run.data.metrics["psi.f0"] == pytest.approx(runs[-1]["max_psi"])
    table = installation.mlc("monitor", "history", model)
    assert table.returncode == 0 and "retrain" in table.stdout and "up" in table.stdout


def test_a_missing_data_file_is_refused_in_one_line(installation, model) -> None:
    r = installation.mlc("monitor", "run", model, "--data", "/nonexistent.csv")
    assert r.returncode == 2 and "current data not found" in r.stderr and "Traceback" not in r.stderr
