"""The Grafana dashboard and the Prometheus alert rules over the model server's own metrics.

The names are those ``mlc runtime serve`` exposes at ``/metrics`` (modelops_mlc/runtimes/server.py):
counters ``mlc_inference_requests_total`` and ``mlc_inference_errors_total`` (labels model, version,
protocol; errors also status), the histogram ``mlc_inference_latency_seconds``, the gauge
``mlc_runtime_models_loaded`` and the monitor's drift figures: ``mlc_drift_psi`` (labels model,
version, feature), the PSI of each feature in the model's latest monitor run, which the server reads
from the MLC store (modelops_mlc/runtimes/drift_metrics.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops_mlc.plan.thresholds import THRESHOLDS

__all__ = ["METRICS", "alert_rules", "dashboard", "error_rate_expr", "write_stack_files"]

REQUESTS = "mlc_inference_requests_total"
ERRORS = "mlc_inference_errors_total"
LATENCY = "mlc_inference_latency_seconds_bucket"
LOADED = "mlc_runtime_models_loaded"
PSI = "mlc_drift_psi"
METRICS = (REQUESTS, ERRORS, LATENCY, LOADED, PSI)
DATASOURCE = {"type": "prometheus", "uid": "mlc-prometheus"}
DASHBOARD_UID = "mlc-runtime"


def _selector(model: str | None) -> str:
    return f'{{model="{model}"}}' if model else '{model=~"$model"}'


def error_rate_expr(model: str | None, window: str) -> str:
    sel = _selector(model)
    return (f"sum by (model) (rate({ERRORS}{sel}[{window}])) / sum by (model) (rate({REQUESTS}{sel}[{window}]))")


def _threshold(action: str, metric: str = "error_rate") -> float:
    return next(t.value for t in THRESHOLDS if t.id == f"{metric}_{action}")


def alert_rules(model: str | None = None, *, latency_ms: float | None = None) -> dict[str, Any]:
    """A Prometheus rule file: error rate above 1 % alerts, above 5 % pages; with ``latency_ms`` the p99
    over that budget alerts too. ``model`` None: every model a runtime serves."""
    scope = f"model {model}" if model else "model {{ $labels.model }}"
    rules: list[dict[str, Any]] = []
    for action, alert, severity in (("alert", "MlcErrorRateHigh", "warning"), ("page", "MlcErrorRatePage", "page")):
        value = _threshold(action)
        rules.append({
            "alert": alert,
            "expr": f"{error_rate_expr(model, '5m')} > {value:g}",
            "for": "5m",
            "labels": {"severity": severity, "mlc_threshold": f"error_rate_{action}"},
            "annotations": {
                "summary": f"{scope}: error rate above {value:.0%}",
                "description": "{{ $value | humanizePercentage }} of the inference requests of "
                               f"{scope} failed over 5 minutes (threshold {value:.0%}).",
            },
        })
    if latency_ms is not None:
        seconds = latency_ms / 1000
        rules.append({
            "alert": "MlcLatencyP99OverBudget",
            "expr": f"histogram_quantile(0.99, sum by (model, le) (rate({LATENCY}{_selector(model)}[5m]))) > {seconds:g}",
            "for": "10m",
            "labels": {"severity": "warning", "mlc_threshold": "latency_ms"},
            "annotations": {
                "summary": f"{scope}: p99 latency above {latency_ms:g} ms",
                "description": "p99 inference latency {{ $value | humanizeDuration }} over the budget of "
                               f"{latency_ms:g} ms for 10 minutes.",
            },
        })
    name = f"mlc-{model}" if model else "mlc-runtimes"
    return {"groups": [{"name": name, "rules": rules}]}


PSI_COLORS = {"monitor": "yellow", "investigate": "orange", "retrain": "red"}


def dashboard(model: str | None = None, psi_lines: Mapping[str, float] | None = None,
              risk_tier: str | None = None) -> dict[str, Any]:
    """The Grafana dashboard (built with grafana-foundation-sdk) as the JSON Grafana loads: rps, error
    rate, latency p50/p95/p99, the loaded versions of the runtimes and each feature's PSI in the latest
    monitor run with the monitor, investigate and retrain thresholds as lines, per model (a template
    variable). ``psi_lines`` (action -> PSI) are the figures the monitor decision applies at ``risk_tier``
    (a plan's, read from the DMN); None draws the defaults, for a dashboard over every model."""
    import json

    from grafana_foundation_sdk.builders import common
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
    from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode
    from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableRefresh

    source = DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE["uid"])
    rate = "$__rate_interval"
    sel = '{model=~"$model"}'

    def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
        return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()

    def panel(title: str, unit: str, *queries: prometheus.Dataquery) -> timeseries.Panel:
        built = (timeseries.Panel().title(title).unit(unit).datasource(source).height(8).span(12)
                 .legend(common.VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                         .placement(LegendPlacement.BOTTOM).show_legend(True))
                 .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)))
        for q in queries:
            built = built.with_target(q)
        return built

    if psi_lines is None:
        psi_lines = {action: _threshold(action, "psi") for action in PSI_COLORS}
        which = "the monitor's default thresholds (mlc-monitor-criteria moves them by risk tier)"
    else:
        which = f"the thresholds mlc-monitor-criteria applies at risk tier {risk_tier or 'none'}"
    shown = (", ".join(f"{action} {psi_lines[action]:g}" for action in PSI_COLORS if action in psi_lines)
             or "none, as no rule of it tests PSI")
    lines = [Threshold(None, "green"), *(Threshold(psi_lines[action], color) for action, color in PSI_COLORS.items()
                                         if action in psi_lines)]
    psi_panel = (panel("Drift: PSI per feature (latest monitor run)", "none",
                       query(f"max by (model, version, feature) ({PSI}{sel})", "{{model}}/{{version}} {{feature}}"))
                 .description("Each feature's PSI in the model's latest monitor run, as the model server reads it "
                              f"from the MLC store. Lines: {which}: {shown} (PLAN.md names the rules).")
                 .span(24).min(0)
                 .thresholds(db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(lines))
                 .thresholds_style(common.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)))
    latency = [query(f"histogram_quantile({q}, sum by (model, le) (rate({LATENCY}{sel}[{rate}])))",
                     f"{{{{model}}}} p{int(q * 100)}", ref) for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]
    variable = (db.QueryVariable("model").label("model").datasource(source)
                .query(f"label_values({REQUESTS}, model)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                .include_all(True).multi(True))
    if model:
        variable = variable.current({"text": model, "value": model})
    built = (
        db.Dashboard(f"modelops-mlc runtimes{f': {model}' if model else ''}")
        .uid(f"{DASHBOARD_UID}-{model}"[:40] if model else DASHBOARD_UID)
        .tags(["modelops-mlc"])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(variable)
        .with_panel(panel("Requests per second", "reqps",
                          query(f"sum by (model, version) (rate({REQUESTS}{sel}[{rate}]))", "{{model}}/{{version}}")))
        .with_panel(panel("Error rate", "percentunit",
                          query(error_rate_expr(None, rate), "{{model}}")))
        .with_panel(panel("Latency p50 / p95 / p99", "s", *latency))
        .with_panel(panel("Model versions loaded", "short", query(f"sum({LOADED})", "loaded")))
        .with_panel(psi_panel)
        .build()
    )
    return json.loads(json.dumps(built, cls=JSONEncoder))


def write_stack_files(docker_dir: Path) -> list[Path]:
    """The compose file's `monitoring` profile files: the alert rules and the dashboard over every model
    (STACK_HEADER says how to regenerate them)."""
    import json

    import yaml

    rules = docker_dir / "prometheus" / "rules" / "mlc-runtimes.yaml"
    board = docker_dir / "grafana" / "dashboards" / "mlc-runtime.json"
    for path in (rules, board):
        path.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(STACK_HEADER + yaml.safe_dump(alert_rules(), sort_keys=False))
    board.write_text(json.dumps(dashboard(), indent=2) + "\n")
    return [rules, board]


STACK_HEADER = ("# Generated from modelops_mlc/plan/monitoring.py: .venv/bin/python -c \"from pathlib import Path; "
                "from modelops_mlc.plan.monitoring import write_stack_files; write_stack_files(Path('docker'))\"\n")
