"""docker/compose.yaml's `monitoring` profile: Prometheus scraping the runtime with the plan's alert rules,
Grafana with the runtime dashboard provisioned. Checked statically (no Docker engine here)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
PROMTOOL = shutil.which("promtool")


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _mounted(service: dict, target: str) -> Path:
    """The file or folder of docker/ that ``service`` mounts at ``target``."""
    source = next(v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target)
    return (DOCKER / source).resolve()


def test_prometheus_and_grafana_run_only_in_the_monitoring_profile() -> None:
    services = _services()
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert "prometheus" in services["grafana"]["depends_on"]


def test_prometheus_scrapes_the_runtime_where_compose_serves_it() -> None:
    services = _services()
    config = yaml.safe_load(_mounted(services["prometheus"], "/etc/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mlc-runtimes")
    assert job["metrics_path"] == "/metrics"
    runtime = services["runtime"]["command"]
    port = runtime[runtime.index("--port") + 1]
    assert job["static_configs"][0]["targets"] == [f"runtime:{port}"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    rules = _mounted(services["prometheus"], "/etc/prometheus/rules")
    assert sorted(p.name for p in rules.glob("*.yaml")) == ["mlc-runtimes.yaml"]


def test_the_stack_files_are_what_the_plan_code_generates(tmp_path: Path) -> None:
    """The provisioned rules and dashboard are generated from modelops_mlc/plan/monitoring.py (the header of
    the rules file says how); a stale copy fails here."""
    from modelops_mlc.plan.monitoring import write_stack_files

    for fresh in write_stack_files(tmp_path):
        kept = DOCKER / fresh.relative_to(tmp_path)
        assert kept.read_text() == fresh.read_text(), f"{kept} is stale: regenerate it"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus; .ci/run installs it)")
def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (["check", "config", "--syntax-only", str(DOCKER / "prometheus/prometheus.yml")],
                 ["check", "rules", str(DOCKER / "prometheus/rules/mlc-runtimes.yaml")]):
        run = subprocess.run([PROMTOOL, *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard() -> None:
    from modelops_mlc.plan.validate import check_dashboard

    grafana = _services()["grafana"]
    provisioning = _mounted(grafana, "/etc/grafana/provisioning")
    source = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())["datasources"][0]
    assert (source["type"], source["url"], source["uid"]) == ("prometheus", "http://prometheus:9090", "mlc-prometheus")
    provider = yaml.safe_load((provisioning / "dashboards/mlc.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = _mounted(grafana, "/var/lib/grafana/dashboards")
    board = json.loads((dashboards / "mlc-runtime.json").read_text())
    check_dashboard(board)
    uids = {p["datasource"]["uid"] for p in board["panels"] if p.get("datasource")}
    assert uids == {"mlc-prometheus"}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == "/var/lib/grafana/dashboards/mlc-runtime.json"
