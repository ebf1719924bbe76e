"""`mlc plan` as a user runs it: inputs from a YAML file and flags; bad input and conflicts are one line and
exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


def test_inputs_come_from_a_yaml_file_with_flags_overriding_it(run_mlc: Any, tmp_path: Path) -> None:
    inputs = {"model_name": "churn", "model_type": "classification", "deployment_target": "online",
              "scale_requirements": {"latency_ms": 80}, "governance_level": "production",
              "storage_uri": "gs://models/churn"}
    (tmp_path / "inputs.yaml").write_text(yaml.safe_dump(inputs))
    run = run_mlc("plan", "--file", str(tmp_path / "inputs.yaml"), "--governance", "experimental", "--rps", "5000",
                  "--out", str(tmp_path / "plan"), "--json")
    assert run.returncode == 0, run.stderr
    assert "deployment/inferenceservice.yaml" in json.loads(run.stdout)["files"]
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert plan["inputs"]["governance_level"] == "experimental"
    assert plan["inputs"]["scale_requirements"] == {"latency_ms": 80.0, "rps": 5000.0, "data_volume_gb": None,
                                                    "concurrent_users": None}
    assert plan["decisions"]["fired"] == ["latency_50_to_500ms", "rps_over_1000", "governance_experimental",
                                          "team_under_5"]


def test_a_bad_value_is_one_line_naming_the_allowed_values(run_mlc: Any, tmp_path: Path) -> None:
    run = run_mlc("plan", "--model", "churn", "--model-type", "classification", "--target", "cloud",
                  "--latency-ms", "80", "--governance", "production", "--out", str(tmp_path / "plan"))
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == ("error: invalid plan input: deployment_target: 'cloud' is not allowed; "
                                          "allowed values: batch, online, edge, embedded or hybrid")
    assert "Traceback" not in run.stderr and not (tmp_path / "plan").exists()


def test_a_conflict_aborts_with_its_reason(run_mlc: Any, tmp_path: Path) -> None:
    run = run_mlc("plan", "--model", "churn", "--model-type", "classification", "--target", "edge",
                  "--latency-ms", "10", "--governance", "staging", "--model-format", "pytorch",
                  "--out", str(tmp_path / "plan"))
    assert run.returncode == 2
    assert run.stderr.startswith("error: conflicting requirements: edge serving and latencies under 50 ms need an "
                                 "ONNX export")
    assert "model_format pytorch cannot be exported (conflict_edge_format)" in run.stderr
    assert not (tmp_path / "plan").exists()


def test_apply_refuses_a_directory_that_holds_no_plan(run_mlc: Any, tmp_path: Path) -> None:
    run = run_mlc("plan", "apply", str(tmp_path))
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: {tmp_path} is not a plan directory (no plan.json)")


def test_a_postgres_backed_setup_plans_without_writing_its_password(run_mlc: Any, tmp_path: Path) -> None:
    env = {"MLC_POSTGRES_URL": "postgresql://mlc:Pw0rdX@127.0.0.1:1/mlc", "MLFLOW_TRACKING_URI": ""}
    run = run_mlc("plan", "--model", "churn", "--model-type", "classification", "--target", "batch",
                  "--data-volume-gb", "5", "--governance", "experimental", "--model-format", "sklearn",
                  "--batch-input", "/d/in.csv", "--batch-output", "/d/out.csv", "--out", str(tmp_path / "plan"), env=env)
    assert run.returncode == 0, run.stderr
    assert "Pw0rdX" not in run.stdout + run.stderr
    experiment = json.loads((tmp_path / "plan" / "experiment.json").read_text())
    assert experiment["tracking_uri"] == "postgresql+psycopg://127.0.0.1:1/mlc"
    assert experiment["secrets"]["database_url"] == "MLC_POSTGRES_URL"
    assert not [p for p in (tmp_path / "plan").rglob("*") if p.is_file() and "Pw0rdX" in p.read_text()]


@pytest.mark.parametrize(("key", "value", "kind"), [("scale_requirements", 5, "a number"), ("data", "x", "a string")])
def test_a_section_that_is_not_a_mapping_is_one_line_naming_it(run_mlc: Any, tmp_path: Path, key: str, value: Any,
                                                               kind: str) -> None:
    inputs = {"model_name": "churn", "model_type": "classification", "deployment_target": "batch",
              "governance_level": "staging", "scale_requirements": {"data_volume_gb": 5}, key: value}
    (tmp_path / "inputs.yaml").write_text(yaml.safe_dump(inputs))
    run = run_mlc("plan", "--file", str(tmp_path / "inputs.yaml"), "--out", str(tmp_path / "plan"))
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: invalid plan input: {key} must be a mapping of ")
    assert run.stderr.splitlines()[0].endswith(f"not {kind}")
    assert "Traceback" not in run.stderr and not (tmp_path / "plan").exists()
