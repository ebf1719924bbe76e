"""The monitor's drift figures as Prometheus metrics of the model server that serves the model.

Each monitor run is kept in the MLC store (modelops_mlc/monitoring/history.py). :class:`DriftCollector`
reads the latest run of every model the server routes and exposes it at ``/metrics``:

* ``mlc_drift_psi{model,version,feature}``: the PSI of each feature of that run (the model's output is
  feature ``prediction``), ``version`` being the version the run monitored;
* ``mlc_monitor_verdict{model,version,verdict}``: 1 for the run's verdict (ok, notify, investigate,
  retrain);
* ``mlc_monitor_run_timestamp_seconds{model,version}``: when that run was recorded.

The store is read at most every ``ttl`` seconds; between reads, and when a read fails, the last figures
are served. The collector lives in the registry ``/metrics`` renders, never in prometheus_client's
multiprocess files, so with ``--workers N`` each scrape reports it once (from the worker that answers),
not summed over the workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import MlcError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.monitoring.history import MonitorRun

__all__ = ["DRIFT_PSI", "MONITOR_RUN_TIME", "MONITOR_VERDICT", "DriftCollector"]

log = logging.getLogger(__name__)

DRIFT_PSI = "mlc_drift_psi"
MONITOR_VERDICT = "mlc_monitor_verdict"
MONITOR_RUN_TIME = "mlc_monitor_run_timestamp_seconds"


class DriftCollector:
    """A prometheus_client custom collector over the latest monitor run of each of ``models()``."""

    def __init__(self, settings: "Settings", models: Callable[[], Iterable[str]], *, ttl: float = 5.0) -> None:
        self.settings = settings
        self.models = models
        self.ttl = ttl
        self._lock = threading.Lock()
        self._runs: list["MonitorRun"] = []
        self._read_at: float | None = None

    def _latest(self) -> list["MonitorRun"]:
        """The cached runs, read again from the store when older than ``ttl``."""
        from sqlalchemy.exc import SQLAlchemyError

        from modelops_mlc.monitoring.history import history

        with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < self.ttl:
                return self._runs
            self._read_at = now  # a failing store is tried again after ttl, not on every scrape
            try:
                runs = []
                for model in sorted(set(self.models())):
                    runs += history(self.settings, model, limit=1)
            except (SQLAlchemyError, MlcError, OSError) as exc:
                log.warning("drift metrics: cannot read the monitor runs, serving the last ones: %s", exc)
                return self._runs
            self._runs = runs
            return runs

    def describe(self) -> Iterator[Any]:
        return iter(())  # the families depend on the store: registering must not read it

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        psi = GaugeMetricFamily(DRIFT_PSI, "PSI of a feature in the model's latest monitor run",
                                labels=["model", "version", "feature"])
        verdict = GaugeMetricFamily(MONITOR_VERDICT, "Verdict of the model's latest monitor run (1 for the verdict)",
                                    labels=["model", "version", "verdict"])
        at = GaugeMetricFamily(MONITOR_RUN_TIME, "When the model's latest monitor run was recorded",
                               labels=["model", "version"])
        for run in self._latest():
            version = run.model_version or ""
            seen = set()  # a data feature named like the output would give Prometheus a duplicate series
            for f in run.features:
                if f.psi is not None and f.feature not in seen:
                    seen.add(f.feature)
                    psi.add_metric([run.model_id, version, f.feature], f.psi)
            verdict.add_metric([run.model_id, version, run.verdict], 1)
            if run.at is not None:
                at.add_metric([run.model_id, version], run.at.timestamp())
        yield from (psi, verdict, at)
