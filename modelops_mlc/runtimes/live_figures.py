"""Live figures of one model version on its runtime, for judging a canary.

A runtime's model servers expose cumulative Prometheus counters per model version (requests,
errors by status, a latency histogram; see ``server._Metrics``). A :class:`Scrape` reads them
from every endpoint of the runtime; the difference of two scrapes is what the version did in
between, from which :func:`figures` derives the request count, error rate and latency p99 a
canary decision compares with its SLO. A server restarted in between has counted from zero
again: its second reading is then taken whole, as Prometheus' ``increase`` does. A server of
several processes (``--workers N``) answers ``/metrics`` with all of them summed, so one scrape
of its endpoint is the whole runtime.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from modelops_mlc.errors import RuntimeServiceError, first_line

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Counters", "LiveFigures", "Scrape", "figures", "parse_counters", "quantile", "scrape"]

REQUESTS = "mlc_inference_requests"
ERRORS = "mlc_inference_errors"
LATENCY = "mlc_inference_latency_seconds"


class Counters(BaseModel):
    """The cumulative counters of one model version on one model server."""

    requests: float = 0.0
    errors: dict[str, float] = Field(default_factory=dict)  # HTTP status -> count
    buckets: dict[str, float] = Field(default_factory=dict)  # upper bound ("0.25", "+Inf") -> cumulative count
    latency_sum: float = 0.0

    def histogram(self) -> list[tuple[float, float]]:
        """The latency buckets as (upper bound in seconds, cumulative count), by bound."""
        return sorted((float(le), count) for le, count in self.buckets.items())

    def since(self, start: "Counters") -> "Counters":
        """What happened between ``start`` and this reading (all of this reading after a reset)."""
        if self.requests < start.requests or any(self.errors.get(k, 0.0) < v for k, v in start.errors.items()):
            return self.model_copy(deep=True)
        return Counters(
            requests=self.requests - start.requests,
            errors={k: v - start.errors.get(k, 0.0) for k, v in self.errors.items() if v - start.errors.get(k, 0.0)},
            buckets={le: count - start.buckets.get(le, 0.0) for le, count in self.buckets.items()},
            latency_sum=max(0.0, self.latency_sum - start.latency_sum),
        )

    def __add__(self, other: "Counters") -> "Counters":
        errors = dict(self.errors)
        for k, v in other.errors.items():
            errors[k] = errors.get(k, 0.0) + v
        buckets = dict(self.buckets)
        for le, count in other.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + count
        return Counters(requests=self.requests + other.requests, errors=errors, buckets=buckets,
                        latency_sum=self.latency_sum + other.latency_sum)


def parse_counters(text: str, model: str, version: str) -> Counters:
    """The counters of ``model``/``version`` in a ``/metrics`` page (zero when it has none yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    found = Counters()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise RuntimeServiceError(f"unreadable Prometheus metrics: {first_line(exc)}") from exc
    for family in families:
        if family.name not in (REQUESTS, ERRORS, LATENCY):
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or labels.get("version") != version:
                continue
            if sample.name == f"{REQUESTS}_total":
                found.requests += sample.value
            elif sample.name == f"{ERRORS}_total":
                status = labels.get("status", "?")
                found.errors[status] = found.errors.get(status, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_bucket":
                le = labels["le"]
                found.buckets[le] = found.buckets.get(le, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_sum":
                found.latency_sum += sample.value
    return found


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated inside its bucket as
    Prometheus' ``histogram_quantile`` does; None without observations. A rank in the open
    ``+Inf`` bucket gives the highest finite bound."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


class Scrape(BaseModel):
    """One reading of a version's counters on every endpoint of its runtime."""

    model: str
    version: str
    runtime: str
    at: dt.datetime
    endpoints: dict[str, Counters]

    def since(self, start: "Scrape") -> Counters:
        """The counters accrued since ``start``, summed over the endpoints (new endpoints whole)."""
        total = Counters()
        for endpoint, counters in self.endpoints.items():
            earlier = start.endpoints.get(endpoint)
            total = total + (counters.since(earlier) if earlier is not None else counters)
        return total


def scrape(settings: "Settings", runtime: str, model: str, version: str | int, *, timeout: float = 10.0) -> Scrape:
    """Read ``/metrics`` of every endpoint of ``runtime``; RuntimeServiceError when one does not answer."""
    import httpx

    from modelops_mlc.runtimes.catalog import RuntimeCatalog, as_utc

    rt = RuntimeCatalog(settings).get(runtime)
    if not rt.endpoints:
        raise RuntimeServiceError(f"runtime {runtime} has no endpoint: a batch runtime has no live figures")
    read: dict[str, Counters] = {}
    for endpoint in rt.endpoints:
        url = f"{endpoint.rstrip('/')}/metrics"
        try:
            resp = httpx.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            raise RuntimeServiceError(f"runtime {runtime}: cannot read {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise RuntimeServiceError(f"runtime {runtime}: {url} answered {resp.status_code}")
        read[endpoint] = parse_counters(resp.text, model, str(version))
    return Scrape(model=model, version=str(version), runtime=runtime, at=as_utc(dt.datetime.now(dt.timezone.utc)),
                  endpoints=read)


class LiveFigures(BaseModel):
    """What a version did in a window: the inputs of the canary decision, and its evidence."""

    model: str
    version: str
    runtime: str
    window_start: dt.datetime
    window_end: dt.datetime
    requests: int
    errors: int
    errors_by_status: dict[str, int]
    error_rate: float | None  # errors / requests; None without requests
    p99_ms: float | None  # None without requests
    mean_ms: float | None
    labelled: int = 0  # predictions with a feedback label in the window
    accuracy: float | None = None  # None: not yet known (no labels)

    def summary(self) -> str:
        """One line quoting the figures, as a ticket or a notification would."""
        rate = "n/a" if self.error_rate is None else f"{self.error_rate:.4f}"
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        accuracy = ("not yet known (no feedback labels)" if self.accuracy is None
                    else f"{self.accuracy:.4f} on {self.labelled} labelled predictions")
        return (f"{self.requests} requests, {self.errors} errors (error rate {rate}), latency p99 {p99}, "
                f"accuracy {accuracy}")


def figures(start: Scrape, end: Scrape, *, labelled: int = 0, accuracy: float | None = None) -> LiveFigures:
    """The figures of the window from ``start`` to ``end`` (two scrapes of the same version)."""
    counted = end.since(start)
    requests = int(round(counted.requests))
    by_status = {k: int(round(v)) for k, v in sorted(counted.errors.items()) if round(v)}
    errors = sum(by_status.values())
    histogram = counted.histogram()
    observed = histogram[-1][1] if histogram else 0.0
    p99 = quantile(0.99, histogram) if requests else None
    return LiveFigures(
        model=end.model, version=end.version, runtime=end.runtime, window_start=start.at, window_end=end.at,
        requests=requests, errors=errors, errors_by_status=by_status,
        error_rate=errors / requests if requests else None,
        p99_ms=None if p99 is None else p99 * 1000.0,
        mean_ms=counted.latency_sum / observed * 1000.0 if observed else None,
        labelled=labelled, accuracy=accuracy if labelled else None,
    )
