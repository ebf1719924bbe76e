"""docker/compose.yaml cannot run here (no Docker engine); keep it valid and consistent."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_compose_runs_the_stock_image_with_bpmn_mounted() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    engine = compose["services"]["engine"]
    assert engine["image"] == "camunda/camunda-bpm-platform:run-7.24.0"
    assert "../bpmn:/camunda/configuration/resources:ro" in engine["volumes"]
    assert "engine-rest" in " ".join(engine["healthcheck"]["test"])
    assert engine["environment"]["CAMUNDA_BPM_HISTORY_LEVEL"] == "full"
    workers = compose["services"]["workers"]
    assert workers["environment"]["MLC_ENGINE_URL"] == "http://engine:8080/engine-rest"
    assert workers["depends_on"]["engine"]["condition"] == "service_healthy"
    assert (ROOT / "docker" / workers["build"]["dockerfile"].split("/")[-1]).exists()
    for name in compose.get("volumes", {}):
        assert any(name in str(v) for s in compose["services"].values() for v in s.get("volumes", []))
