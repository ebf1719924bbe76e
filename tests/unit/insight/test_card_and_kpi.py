"""The model card on a real MLflow registry (real metrics, subgroups checked against sklearn, kept as
an artifact and tagged), and the KPI arithmetic on durations the engine would report."""

from __future__ import annotations

from urllib.parse import unquote, urlparse
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops_mlc.insight.card import CARD_TAG, PLACEHOLDER, build_card, publish_card
from modelops_mlc.insight.kpi import Duration, Sample
from modelops_mlc.jobs import metrics_test


def test_card_has_the_versions_metrics_and_subgroups(registry, breast_cancer, tmp_path: Path) -> None:
    X, y, model = breast_cancer
    group = np.where(X["mean radius"] > X["mean radius"].median(), "large", "small")
    data_path = tmp_path / "test.csv"
    X.assign(target=y, group=group).to_csv(data_path, index=False)
    registry.register("carded", estimator=model, input_example=X.head(3), assets={"TEST_DATA": data_path},
                      tags={"protected_attribute": "group", "risk_tier": "HIGH"})
    result = metrics_test(registry, "carded", plots=False)

    card = build_card(registry, "carded/1")
    text = card.markdown
    for section in ("## Model details", "## Intended use", "## Metrics", "## Training data",
                    "## Ethical considerations", "## Caveats and recommendations"):
        assert section in text
    for metric, value in result.metrics.items():
        assert f"| {metric} | {value:.4g} |" in text
    assert "| risk_tier | HIGH |" in text
    pred = model.predict(X)
    for name in ("large", "small"):
        mask = group == name
        accuracy = skm.accuracy_score(y[mask], pred[mask])
        tpr = skm.recall_score(y[mask], pred[mask])
        assert f"| {name} | {mask.sum()} | {accuracy:.4g} | {np.mean(pred[mask] == 1):.4g} | {tpr:.4g} |" in text
    assert text.count(PLACEHOLDER.split("{")[0]) >= 5
    assert "No training run or TRAINING_DATA asset is recorded" in text

    out = tmp_path / "cards" / "carded.md"
    published = publish_card(registry, card, out=out)
    assert out.read_text() == text
    uri = registry.get_version("carded/1").tags[CARD_TAG]
    assert uri == published.artifact_uri and Path(unquote(urlparse(uri).path)).read_text() == text


def test_card_of_an_unknown_version_is_a_clear_error(run_mlc) -> None:
    r = run_mlc("model", "card", "nobody/3")
    assert r.returncode == 4 and "nobody" in r.stderr and "Traceback" not in r.stderr


def _sample(seconds: float) -> Sample:
    return Sample(model_id="m", instance_id="i", what="w", start="", end="", seconds=seconds)


def test_duration_median_and_p90() -> None:
    figures = Duration.of([_sample(s) for s in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)])
    assert (figures.count, figures.median_s, figures.p90_s) == (10, 55, pytest.approx(91))
    assert Duration.of([_sample(7.5)]).model_dump(exclude={"samples"}) == {"count": 1, "median_s": 7.5, "p90_s": 7.5}
    assert Duration.of([]).count == 0 and Duration.of([]).median_s is None


def test_the_metric_trend_draws_a_chart_per_metric_even_for_many_metrics(registry) -> None:
    """One small chart per metric, each on its own axis; 28 metrics (10 rows of charts) stay within the
    grid spacing Plotly accepts, instead of failing the whole report."""
    from mlflow.entities import Metric

    from modelops_mlc.insight.report import _metric_trend

    for origin in ("test", "back test"):
        with registry.start_run(f"{origin} run", tags={"mlc.model_name": "many", "mlc.kind": "test"}) as run:
            registry.client.log_batch(run.info.run_id, metrics=[
                Metric(f"m{i:02d}", float(i), 0, 0) for i in range(28)])
    fig = _metric_trend(registry, "many", set())
    titles = [a.text for a in fig.layout.annotations]
    assert sorted(titles) == [f"m{i:02d}" for i in range(28)]  # one chart each, named by the metric alone
    assert fig.layout.yaxis.matches is None and fig.layout.yaxis2.matches is None  # scales of their own
