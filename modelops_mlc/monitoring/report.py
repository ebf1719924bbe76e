"""A self-contained HTML report of a drift check: per feature, the distributions of reference and
current data side by side (plotly, its JavaScript inlined, so the file opens anywhere offline)."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from modelops_mlc.jobs.results import DriftResult, FeatureDrift

__all__ = ["drift_report"]

_COLOURS = {"reference": "#1f77b4", "current": "#ff7f0e"}
_VERDICT_COLOURS = {"ok": "#2ca02c", "notify": "#bcbd22", "investigate": "#ff7f0e", "retrain": "#d62728"}


def _read(path: str | os.PathLike[str], columns: list[str]) -> "pd.DataFrame":
    from modelops_mlc.jobs._data import read_frame, require_file

    frame = read_frame(require_file(path, "data"))
    return frame[[c for c in columns if c in frame.columns]]


def _shares(ref: "pd.Series", cur: "pd.Series", feature: "FeatureDrift", bins: int) -> tuple[list[str], list[float], list[float]]:
    """Bin labels and the share of each sample in them: reference deciles for a numeric feature
    (as its PSI was computed), categories for a categorical one."""
    import numpy as np
    import pandas as pd

    ref, cur = ref.dropna(), cur.dropna()
    if feature.kind == "numeric":
        edges = np.unique(np.quantile(ref.astype(float), np.linspace(0, 1, bins + 1)))
        if edges.size < 2:
            edges = np.array([float(ref.min()), float(ref.max()) + 1.0])
        edges[0], edges[-1] = -np.inf, np.inf
        labels = [f"{_fmt(lo)} .. {_fmt(hi)}" for lo, hi in zip(edges[:-1], edges[1:])]
        counts = [np.histogram(s.astype(float), bins=edges)[0] for s in (ref, cur)]
    else:
        cats = sorted(set(ref.astype(str)) | set(cur.astype(str)))
        labels = cats
        counts = [pd.Series(s.astype(str)).value_counts().reindex(cats, fill_value=0).to_numpy() for s in (ref, cur)]
    shares = [(c / max(c.sum(), 1)).tolist() for c in counts]
    return labels, shares[0], shares[1]


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.4g}"


def drift_report(result: "DriftResult", reference: str | os.PathLike[str], current: str | os.PathLike[str],
                 out: str | os.PathLike[str], *, title: str = "Drift report",
                 prediction: "FeatureDrift | None" = None) -> Path:
    """Write the report of ``result`` (the drift job's, over ``reference`` and ``current``) to ``out``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    features = list(result.features)
    ref_df = _read(reference, [f.feature for f in features])
    cur_df = _read(current, [f.feature for f in features])
    rows = max(1, math.ceil(len(features) / 2))
    titles = [f"{f.feature}: PSI {f.psi:.3f}, {f.test} p={f.p_value:.3g}, {f.verdict}" for f in features]
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles or ["no features"], vertical_spacing=min(0.3, 0.6 / rows))
    for i, f in enumerate(features):
        labels, ref_shares, cur_shares = _shares(ref_df[f.feature], cur_df[f.feature], f, result.bins)
        for name, shares in (("reference", ref_shares), ("current", cur_shares)):
            fig.add_trace(go.Bar(x=labels, y=shares, name=name, marker_color=_COLOURS[name], legendgroup=name,
                                 showlegend=i == 0), row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(barmode="group", height=max(400, 320 * rows), title_text=title, bargap=0.15,
                      yaxis_tickformat=".0%")
    fig.update_yaxes(tickformat=".0%")
    summary_rows = "".join(
        f"<tr><td>{html.escape(f.feature)}</td><td>{f.kind}</td><td>{f.psi:.4f}</td><td>{f.test}</td>"
        f"<td>{f.statistic:.4f}</td><td>{f.p_value:.3g}</td>"
        f"<td style='color:{_VERDICT_COLOURS.get(f.verdict, '#000')}'>{f.verdict}</td></tr>"
        for f in ([*features, prediction] if prediction is not None else features))
    head = (f"<h1>{html.escape(title)}</h1><p>verdict <b style='color:{_VERDICT_COLOURS.get(result.verdict, '#000')}'>"
            f"{result.verdict}</b>: {result.reference_rows} reference rows, {result.current_rows} current rows, "
            f"{len(result.drifted_features)} drifted feature(s); PSI over {result.bins} {html.escape(result.binning)} bins"
            f"{' (the row prediction is the drift of the model outputs)' if prediction is not None else ''}.</p>"
            "<table border='1' cellspacing='0' cellpadding='4'><tr><th>feature</th><th>kind</th><th>PSI</th>"
            f"<th>test</th><th>statistic</th><th>p-value</th><th>verdict</th></tr>{summary_rows}</table>")
    body = fig.to_html(full_html=False, include_plotlyjs=True)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                    f"<body style='font-family:sans-serif'>{head}{body}</body></html>", encoding="utf-8")
    return path
