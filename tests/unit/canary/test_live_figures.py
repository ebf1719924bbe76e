"""Live figures from the model server's own Prometheus text: what a version did between two scrapes."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops_mlc.errors import RuntimeServiceError
from modelops_mlc.runtimes.live_figures import Scrape, figures, parse_counters, quantile
from modelops_mlc.runtimes.server import _Metrics

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def scrape(*servers: _Metrics, at: dt.datetime = T0, model: str = "credit", version: str = "2") -> Scrape:
    """One reading of ``servers`` (the endpoints of a runtime) as canary-baseline takes it."""
    return Scrape(model=model, version=version, runtime="prod-1", at=at, endpoints={
        f"http://10.0.0.{i}:8000": parse_counters(m.render().decode(), model, version) for i, m in enumerate(servers)})


def traffic(m: _Metrics, n: int, seconds: float, status: int = 200, *, model: str = "credit", version: str = "2",
            protocol: str = "v2") -> None:
    for _ in range(n):
        m.observe(model, version, protocol, seconds, status)


def test_the_window_is_the_difference_of_two_scrapes():
    server = _Metrics()
    traffic(server, 500, 0.3, 500)  # before the window: none of it counts
    start = scrape(server)
    traffic(server, 85, 0.004)
    traffic(server, 5, 0.004, protocol="mlflow")
    traffic(server, 6, 0.02, 500)
    traffic(server, 4, 0.02, 422)
    traffic(server, 1000, 0.001, version="1")  # the champion beside it
    traffic(server, 50, 0.001, 500, model="other")
    found = figures(start, scrape(server, at=T0 + dt.timedelta(minutes=10)))
    assert (found.requests, found.errors, found.errors_by_status) == (100, 10, {"422": 4, "500": 6})
    assert found.error_rate == pytest.approx(0.1)
    # 90 observations in (2.5 ms, 5 ms], 10 in (10 ms, 25 ms]: the 99th lies 90 % into the second bucket
    assert found.p99_ms == pytest.approx(10 + 15 * 9 / 10)
    assert found.mean_ms == pytest.approx((90 * 4 + 10 * 20) / 100)
    assert (found.window_start, found.window_end) == (T0, T0 + dt.timedelta(minutes=10))
    assert found.accuracy is None
    assert found.summary() == ("100 requests, 10 errors (error rate 0.1000), latency p99 23.5 ms, "
                               "accuracy not yet known (no feedback labels)")


def test_endpoints_add_up_and_a_restarted_server_counts_from_zero():
    a, b = _Metrics(), _Metrics()
    traffic(a, 40, 0.004)
    traffic(b, 30, 0.004)
    start = scrape(a, b)
    traffic(a, 10, 0.004, 500)
    b = _Metrics()  # endpoint 1 restarted: its counters start again
    traffic(b, 20, 0.004)
    c = _Metrics()  # a third endpoint joined during the window
    traffic(c, 5, 0.004)
    found = figures(start, scrape(a, b, c))
    assert (found.requests, found.errors) == (35, 10)


def test_no_requests_leave_rate_and_latency_unknown():
    server = _Metrics()
    start = scrape(server)
    found = figures(start, scrape(server))
    assert (found.requests, found.errors, found.error_rate, found.p99_ms, found.mean_ms) == (0, 0, None, None, None)
    assert found.summary().startswith("0 requests, 0 errors (error rate n/a), latency p99 n/a")


def test_accuracy_counts_only_with_labels():
    server = _Metrics()
    start = scrape(server)
    traffic(server, 3, 0.01)
    assert figures(start, scrape(server), labelled=0, accuracy=0.5).accuracy is None
    found = figures(start, scrape(server), labelled=40, accuracy=0.925)
    assert (found.labelled, found.accuracy) == (40, 0.925)
    assert found.summary().endswith("accuracy 0.9250 on 40 labelled predictions")


def test_a_baseline_survives_the_trip_through_a_process_variable():
    server = _Metrics()
    traffic(server, 7, 30.0)  # beyond the last finite bucket: +Inf must come back as +Inf
    start = scrape(server)
    traffic(server, 3, 30.0)
    again = Scrape.model_validate(start.model_dump(mode="json"))
    assert again == start
    assert figures(again, scrape(server)).requests == 3


def test_quantile_follows_histogram_quantile():
    buckets = [(0.1, 0.0), (0.2, 50.0), (0.4, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.2)
    assert quantile(0.75, buckets) == pytest.approx(0.3)
    assert quantile(0.99, [(0.1, 10.0), (float("inf"), 20.0)]) == 0.1  # in +Inf: the highest finite bound
    assert quantile(0.99, [(0.1, 0.0), (float("inf"), 0.0)]) is None


def test_a_page_that_is_not_prometheus_text_is_an_error():
    with pytest.raises(RuntimeServiceError, match="unreadable Prometheus metrics"):
        parse_counters('mlc_inference_requests_total{model="credit" 3\n', "credit", "2")
