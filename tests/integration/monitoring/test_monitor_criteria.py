"""The mlc-monitor-criteria decision as the engine evaluates it: the default thresholds, gravest first,
and the PSI thresholds of each risk tier (ModelOp's stability defaults: 0.15 HIGH, 0.2 MEDIUM, 0.25 LOW)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.engine import EngineClient

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def client(engine: Any) -> EngineClient:
    c = EngineClient(engine.settings)
    c.deploy_processes([ROOT / "bpmn" / "mlc-monitor-criteria.dmn"], name="mlc-monitor-criteria-tests")
    yield c
    c.close()


def verdict(client: EngineClient, **figures: Any) -> tuple[str, str]:
    names = {"psi": "MONITOR_MAX_PSI", "feature": "MONITOR_MAX_PSI_FEATURE", "prediction": "MONITOR_PREDICTION_PSI",
             "drop": "MONITOR_ACCURACY_DROP", "fairness": "MONITOR_FAIRNESS_GAP"}
    variables = {name: figures.get(short) for short, name in names.items()}
    if "tier" in figures:
        variables["RISK_TIER"] = figures["tier"]
    (row,) = client.evaluate_decision("mlc-monitor-criteria", variables)
    return row["verdict"], row["reason"]


@pytest.mark.parametrize("figures, expected, reason", [
    ({"psi": 0.05, "feature": "age"}, "ok", "largest PSI 0.050 of feature age below 0.1"),
    ({}, "ok", "no drift figures"),
    ({"psi": 0.1, "feature": "age"}, "notify", "PSI 0.100 of feature age between 0.1 and 0.2"),
    ({"psi": 0.2, "feature": "age"}, "notify", "PSI 0.200 of feature age between 0.1 and 0.2"),
    ({"psi": 0.21, "feature": "age"}, "investigate", "PSI 0.210 of feature age above 0.2"),
    ({"psi": 0.25, "feature": "age"}, "investigate", "PSI 0.250 of feature age above 0.2"),
    ({"psi": 0.26, "feature": "age"}, "retrain", "PSI 0.260 of feature age above 0.25"),
    ({"psi": 0.05, "prediction": 0.15}, "notify", "prediction PSI 0.150 between 0.1 and 0.2"),
    ({"psi": 0.05, "prediction": 0.3}, "retrain", "prediction PSI 0.300 above 0.25"),
    ({"psi": 0.05, "drop": 0.05}, "ok", "largest PSI 0.050 below 0.1"),
    ({"psi": 0.05, "drop": 0.06}, "investigate", "accuracy 6.0 % below the baseline (more than 5 %)"),
    ({"psi": 0.05, "drop": 0.1}, "investigate", "accuracy 10.0 % below the baseline (more than 5 %)"),
    ({"psi": 0.15, "feature": "age", "drop": 0.07}, "investigate", "accuracy 7.0 % below the baseline (more than 5 %)"),
    ({"psi": 0.26, "feature": "age", "drop": 0.07}, "retrain", "PSI 0.260 of feature age above 0.25"),
    ({"psi": 0.05, "prediction": 0.3, "drop": 0.07}, "retrain", "prediction PSI 0.300 above 0.25"),
    ({"psi": 0.05, "drop": 0.12}, "retrain", "accuracy 12.0 % below the baseline (more than 10 %)"),
    ({"psi": 0.22, "feature": "age", "drop": 0.3}, "retrain", "accuracy 30.0 % below the baseline (more than 10 %)"),
    ({"psi": 0.05, "fairness": 0.15}, "investigate", "fairness gap 0.150 above 0.1"),
    ({"psi": 0.15, "feature": "age", "fairness": 0.15}, "investigate", "fairness gap 0.150 above 0.1"),
])
def test_default_thresholds(client, figures, expected, reason) -> None:
    assert verdict(client, **figures) == (expected, reason)


@pytest.mark.parametrize("tier, psi, expected, reason", [
    ("HIGH", 0.12, "notify", "PSI 0.120 of feature age between 0.1 and 0.15 (risk tier HIGH)"),
    ("HIGH", 0.16, "investigate", "PSI 0.160 of feature age above 0.15 (risk tier HIGH)"),
    ("HIGH", 0.21, "retrain", "PSI 0.210 of feature age above 0.2 (risk tier HIGH)"),
    ("MEDIUM", 0.16, "notify", "PSI 0.160 of feature age between 0.1 and 0.2"),
    ("MEDIUM", 0.21, "investigate", "PSI 0.210 of feature age above 0.2"),
    ("MEDIUM", 0.26, "retrain", "PSI 0.260 of feature age above 0.25"),
    (None, 0.16, "notify", "PSI 0.160 of feature age between 0.1 and 0.2"),
    ("LOW", 0.05, "ok", "largest PSI 0.050 of feature age below 0.1"),
    ("LOW", 0.24, "notify", "PSI 0.240 of feature age between 0.1 and 0.25 (risk tier LOW)"),
    ("LOW", 0.26, "investigate", "PSI 0.260 of feature age above 0.25 (risk tier LOW)"),
    ("LOW", 0.31, "retrain", "PSI 0.310 of feature age above 0.3 (risk tier LOW)"),
])
def test_psi_thresholds_follow_the_risk_tier(client, tier, psi, expected, reason) -> None:
    assert verdict(client, tier=tier, psi=psi, feature="age") == (expected, reason)


@pytest.mark.parametrize("tier, prediction, expected", [
    ("HIGH", 0.17, "investigate"), ("MEDIUM", 0.17, "notify"), ("LOW", 0.27, "investigate"), ("LOW", 0.32, "retrain"),
])
def test_prediction_psi_thresholds_follow_the_risk_tier(client, tier, prediction, expected) -> None:
    assert verdict(client, tier=tier, psi=0.01, prediction=prediction)[0] == expected


def test_fairness_and_accuracy_do_not_depend_on_the_tier(client) -> None:
    for tier in ("HIGH", "MEDIUM", "LOW", None):
        assert verdict(client, tier=tier, psi=0.01, fairness=0.15)[0] == "investigate"
        assert verdict(client, tier=tier, psi=0.01, drop=0.12)[0] == "retrain"
        assert verdict(client, tier=tier, psi=0.01, drop=0.07)[0] == "investigate"
        assert verdict(client, tier=tier, psi=0.01, drop=0.04)[0] == "ok"


@pytest.mark.parametrize("tier, psi", [("HIGH", 0.21), ("LOW", 0.31)])
def test_an_accuracy_drop_to_investigate_does_not_hide_a_tier_s_retrain(client, tier, psi) -> None:
    assert verdict(client, tier=tier, psi=psi, feature="age", drop=0.07)[0] == "retrain"
