"""`mlc report`: one static, self-contained HTML page (Plotly's JavaScript inlined, no network):
the KPI figures, a Gantt-like timeline of each model's life cycle, the metric trend across its
test runs and the drift trend per feature from its monitor runs."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.insight.facts import gather_instances, iso, mlflow_runs, model_name, monitor_runs, parse_time
from modelops_mlc.insight.kpi import compute_kpis

if TYPE_CHECKING:
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import Registry

__all__ = ["Report", "write_report"]

REPORT_FILE = "index.html"
_COUNTS = {"true_negatives", "false_positives", "false_negatives", "true_positives"}


class Report(BaseModel):
    path: str
    models: list[str]
    plots: int
    figures: dict[str, Any] = Field(default_factory=dict)


def _gantt(models: dict[str, list[Any]]) -> Any:
    import plotly.express as px

    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for name, instances in models.items():
        for f in instances:
            start = parse_time(f.instance.start_time)
            end = parse_time(f.instance.end_time) or now
            rows.append({"model": name, "process": f.instance.process_key, "start": start,
                         "end": max(end, start + dt.timedelta(milliseconds=500)),  # a bar too short to see is not shown
                         "outcome": f.end_event or f.instance.state, "instance": f.instance.id})
    if not rows:
        return None
    fig = px.timeline(rows, x_start="start", x_end="end", y="model", color="process",
                      hover_data=["outcome", "instance"], title="Life cycle: process instances per model")
    fig.update_yaxes(autorange="reversed")
    return fig


def _time_axis(fig: Any, times: list[Any]) -> Any:
    """Runs less than a minute apart (one monitor run, say) would get a millisecond axis: widen it to
    five minutes either side, so the ticks read as times of day."""
    import datetime as dt

    if times and max(times) - min(times) < dt.timedelta(minutes=1):
        fig.update_xaxes(range=[min(times) - dt.timedelta(minutes=5), max(times) + dt.timedelta(minutes=5)])
    return fig


def _metric_trend(registry: "Registry", name: str, back_test_runs: set[str]) -> Any:
    import plotly.express as px

    rows = []
    for run in mlflow_runs(registry, name, "test"):
        origin = "back test" if run.info.run_id in back_test_runs else "test"
        for metric, value in run.data.metrics.items():
            if metric in _COUNTS or metric.endswith("_count"):  # confusion-matrix cells and sizes, not quality
                continue
            rows.append({"time": parse_time(run.info.start_time), "metric": metric, "value": value,
                         "version": run.data.tags.get("mlc.model_version"), "run": origin})
    if not rows:
        return None
    # one small chart per metric, each with its own scale (log loss would flatten accuracy on a shared one)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    wrap = min(3, len(metrics))
    grid_rows = -(-len(metrics) // wrap)
    fig = px.line(rows, x="time", y="value", color="run", symbol="run", markers=True, facet_col="metric",
                  facet_col_wrap=wrap, category_orders={"metric": metrics}, hover_data=["version"],
                  facet_row_spacing=min(0.12, 0.9 / (grid_rows - 1)) if grid_rows > 1 else 0.12,  # Plotly's bound
                  height=140 + 240 * grid_rows,
                  title=f"{name}: metrics across test and back-test runs")
    fig.update_yaxes(matches=None, showticklabels=True, title_text="")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return _time_axis(fig, [r["time"] for r in rows])


def _drift_trend(settings: Any, name: str) -> Any:
    import plotly.express as px

    rows = [{"time": run.at, "feature": f.feature, "psi": f.psi, "verdict": run.verdict}
            for run in monitor_runs(settings, name) for f in run.features if f.psi is not None]
    if not rows:
        return None
    return _time_axis(px.line(rows, x="time", y="psi", color="feature", markers=True, hover_data=["verdict"],
                              title=f"{name}: drift (PSI) per feature across monitor runs"),
                      [r["time"] for r in rows])


def _kpi_table(figures: dict[str, Any]) -> str:
    cells = []
    for key, value in figures.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "none"
        cells.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape('' if value is None else str(value))}</td></tr>")
    return "<table class='kpi'>" + "".join(cells) + "</table>"


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{margin-bottom:0}
.sub{color:#666;margin-top:.2em}table.kpi{border-collapse:collapse}table.kpi th{text-align:left;padding:.2em 1em .2em 0;
font-weight:normal;color:#555}table.kpi td{font-weight:bold}section{margin-top:2em}.none{color:#888}"""


def write_report(client: "EngineClient", registry: "Registry", out_dir: Path, *, model_id: str | None = None,
                 since: dt.datetime | None = None) -> Report:
    """Write ``out_dir/index.html`` for one model or every registered model."""
    import plotly.offline

    name = model_name(model_id) if model_id else None
    if name:
        registry.get_model(name)  # ModelNotFoundError for a model that does not exist
    kpis = compute_kpis(client, registry, since=since, model_id=name)
    models = {m: gather_instances(client, model_id=m, since=since, details=False) for m in kpis.models}
    figures = [("Life cycle", _gantt(models))]
    for m, instances in models.items():
        back_tests = {str(f.variables["TEST_RUN_ID"]) for f in instances
                      if f.instance.process_key == "mlc-run-back-test" and f.variables.get("TEST_RUN_ID")}
        figures.append((f"{m}: metric trend", _metric_trend(registry, m, back_tests)))
        figures.append((f"{m}: drift trend", _drift_trend(registry.settings, m)))
    body, plots = [], 0
    for title, fig in figures:
        body.append(f"<section><h2>{html.escape(title)}</h2>")
        if fig is None:
            body.append("<p class='none'>nothing recorded yet</p>")
        else:
            body.append(fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%"))
            plots += 1
        body.append("</section>")
    scope = f"model {name}" if name else f"{len(kpis.models)} model(s)"
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>MLC report</title>"
        f"<style>{_STYLE}</style><script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>Model life cycle report</h1><p class='sub'>{html.escape(scope)}, generated {iso(dt.datetime.now(dt.timezone.utc))}"
        + (f", since {html.escape(kpis.since or '')}" if since else "") + "</p>"
        f"<section><h2>KPIs</h2>{_kpi_table(kpis.figures())}</section>{''.join(body)}</body></html>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return Report(path=str(path.resolve()), models=kpis.models, plots=plots, figures=kpis.figures())
