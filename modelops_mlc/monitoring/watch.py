"""The new-data watcher behind ``mlc monitor watch DIR --model M``: fires signal ``mlc.monitor``
once for each new, completely written data file in a folder.

A file fires with ``MODEL_ID``, ``CURRENT_DATA`` (its absolute path), ``MONITOR_TRIGGER=new-data``
and ``MLC_TRIGGER_ID`` (one id per file, kept in the MLC store).

*Completely written* means: not a temporary or hidden name (``.part``, ``.tmp``, ``.*``...), not
empty, no write seen since the last close-write (inotify reports both on Linux), and size and
mtime unchanged for ``settle`` seconds. A file renamed into the folder (the atomic way to publish
one) is complete as soon as it settles. Where the platform reports no close-writes, the settle
check alone decides.

*Once* means: a row per (model, file, content) in the MLC store (:mod:`.seen`), written as
``pending`` before the signal and ``fired`` after it. On a restart, files already in the folder
that never fired are fired, fired ones are not, and a pending row (the watcher died between the
signal and the record) is fired again only when the engine's history holds no instance with its
``MLC_TRIGGER_ID``. The same name written again with new content is new data and fires again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelops_mlc.errors import EngineAuthError, EngineUnavailable, MlcError, UsageError, first_line
from modelops_mlc.monitoring.seen import FIRED, PENDING, SeenFileRow, seen_key
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.daemon import GracefulStop, StatusFile
    from modelops_mlc.engine import EngineClient

__all__ = [
    "DEFAULT_SETTLE_S",
    "SIGNAL",
    "TRIGGER",
    "TRIGGER_ID_VAR",
    "FolderWatcher",
    "RoundReport",
    "is_data_name",
    "watcher_name",
]

log = logging.getLogger(__name__)

SIGNAL = "mlc.monitor"
TRIGGER = "new-data"
TRIGGER_ID_VAR = "MLC_TRIGGER_ID"
DEFAULT_SETTLE_S = 2.0
IDLE_WAIT_S = 5.0  # heartbeat of the status file while nothing is pending
BUSY_WAIT_S = 0.2
MAX_BACKOFF_S = 60.0
_TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp", ".lock", "~")


def is_data_name(name: str) -> bool:
    """False for hidden files and the names writers use while a file is still being written."""
    lowered = name.lower()
    return bool(name) and not name.startswith((".", "~")) and not lowered.endswith(_TEMP_SUFFIXES)


def watcher_name(folder: Path | str, model_id: str) -> str:
    """The watcher's name (status file, `mlc up` daemon): model and a short hash of the folder."""
    digest = hashlib.sha256(str(Path(folder).expanduser().resolve()).encode()).hexdigest()[:8]
    return f"watch-{re.sub(r'[^A-Za-z0-9._-]+', '_', model_id)}-{digest}"


@dataclass
class _Candidate:
    """A file seen in the folder and not fired yet."""

    writing: bool = False  # a write seen and no close-write since (only where closes are reported)
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last check
    stable_since: float = 0.0
    events: int = 0  # bumped by every event, so a round drops only a candidate it has seen whole


@dataclass
class RoundReport:
    """What one round of checks did."""

    fired: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # pending rows the engine had already taken
    waiting: list[str] = field(default_factory=list)  # seen, not complete (or not fired) yet
    errors: list[str] = field(default_factory=list)


class FolderWatcher:
    """Watches one folder for one model; ``run()`` is the daemon, ``check()`` one round."""

    def __init__(
        self,
        settings: "Settings",
        engine_client: "EngineClient",
        folder: Path | str,
        model_id: str,
        *,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise UsageError(f"{folder} is not a directory")
        if not model_id or not model_id.strip():
            raise UsageError("a model id is required (--model)")
        if settle_s < 0:
            raise UsageError("--settle must be zero or more seconds")
        self.settings = settings
        self.engine = engine_client
        self.model_id = model_id.strip()
        self.settle_s = float(settle_s)
        self.name = watcher_name(self.folder, self.model_id)
        self.store = open_store(settings)
        self.closes_reported = False
        self.fired_total = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._candidates: dict[str, _Candidate] = {}
        self._wake = threading.Event()
        self._observer: Any = None
        self._engine_failures = 0
        self._engine_retry_at = 0.0

    # -- what the folder tells us (any thread) -----------------------------------------------

    def note(self, path: str | Path, *, writing: bool | None = None) -> None:
        """A file appeared or changed: ``writing`` True after a write, False after a close-write,
        None when it was created, renamed in or found by a scan."""
        p = Path(path)
        if p.parent != self.folder or not is_data_name(p.name):
            return
        with self._lock:
            candidate = self._candidates.setdefault(str(p), _Candidate(stable_since=self._clock()))
            candidate.events += 1
            if writing is not None:
                candidate.writing = writing and self.closes_reported
        self._wake.set()

    def scan(self) -> None:
        """Take every data file already in the folder as a candidate (those fired before drop out)."""
        for p in sorted(self.folder.iterdir()):
            if p.is_file():
                self.note(p)

    def wake(self, _reason: str = "") -> None:
        self._wake.set()

    # -- one round -----------------------------------------------------------------------------

    def check(self) -> RoundReport:
        """Recover pending rows, then fire every candidate that is complete."""
        report = RoundReport()
        now = self._clock()
        if self._engine_retry_at > now:
            report.errors.append("engine unreachable; backing off")
            report.waiting = sorted(self._candidates)
            return report
        try:
            self._recover(report)
            with self._lock:
                items = list(self._candidates.items())
            for path, candidate in items:
                seen_events = candidate.events
                if self._check_one(path, candidate, now, report):
                    with self._lock:
                        if self._candidates.get(path) is candidate and candidate.events == seen_events:
                            del self._candidates[path]
        except (EngineUnavailable, EngineAuthError) as exc:
            self._engine_failures += 1
            delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (self._engine_failures - 1))
            self._engine_retry_at = self._clock() + delay
            log.warning("engine: %s; next try in %.3g s", exc.message, delay)
            report.errors.append(exc.message)
        else:
            if self._engine_failures:
                log.info("the engine answers again")
            self._engine_failures = 0
        report.waiting = sorted(self._candidates)
        return report

    def _check_one(self, path: str, candidate: _Candidate, now: float, report: RoundReport) -> bool:
        """True when the candidate is done with (fired, fired before, or gone)."""
        try:
            st = Path(path).stat()
        except OSError:
            return True  # deleted or moved away before it was complete
        stat = (st.st_size, st.st_mtime_ns)
        if stat != candidate.stat:
            candidate.stat, candidate.stable_since = stat, now
        row = self._row(seen_key(self.model_id, path, _fingerprint(stat)))
        if row is not None and row.state == FIRED:
            return True
        if st.st_size == 0 or candidate.writing or now - candidate.stable_since < self.settle_s:
            return False
        if row is None:
            row = self._insert(path, stat)
            if row is None:
                return True  # another watcher of the same folder and model took it
        self._fire(row, report, recovering=row.attempts > 0)
        return True

    def _recover(self, report: RoundReport) -> None:
        """Pending rows of this folder and model: fired unless the engine already has them."""
        with self.store.session() as s:
            rows = list(s.scalars(select(SeenFileRow).where(
                SeenFileRow.model_id == self.model_id, SeenFileRow.folder == str(self.folder),
                SeenFileRow.state == PENDING,
            )))
        for row in rows:
            with self._lock:
                self._candidates.pop(row.path, None)
            current = _stat(row.path)
            if current is None or _fingerprint(current) != row.fingerprint:
                log.info("%s changed or went away before its monitor was fired; dropped", row.path)
                self._update(row.id, delete=True)
                if current is not None:
                    self.note(row.path)
                continue
            self._fire(row, report, recovering=True)

    def _fire(self, row: SeenFileRow, report: RoundReport, *, recovering: bool) -> None:
        if recovering and self.engine.count_instances(variables={TRIGGER_ID_VAR: row.trigger_id}):
            log.info("monitor for %s had reached the engine already; recorded", row.path,
                     extra={"event": "watch.recovered", "fields": {"model_id": self.model_id, "path": row.path}})
            self._update(row.id, state=FIRED, fired_at=utcnow(), last_error=None)
            report.recovered.append(row.path)
            return
        self._update(row.id, attempts=row.attempts + 1)
        variables = {
            "MODEL_ID": self.model_id, "CURRENT_DATA": row.path, "MONITOR_TRIGGER": TRIGGER,
            TRIGGER_ID_VAR: row.trigger_id,
        }
        try:
            self.engine.signal(SIGNAL, variables)
        except (EngineUnavailable, EngineAuthError) as exc:
            self._update(row.id, last_error=exc.message[:1000])
            raise
        except MlcError as exc:  # refused by the engine: keep the row pending, try again next round
            self._update(row.id, last_error=exc.message[:1000])
            report.errors.append(f"{row.path}: {exc.message}")
            log.warning("signal %s for %s refused: %s", SIGNAL, row.path, exc.message)
            return
        self._update(row.id, state=FIRED, fired_at=utcnow(), last_error=None)
        self.fired_total += 1
        report.fired.append(row.path)
        log.info("fired %s for %s", SIGNAL, row.path,
                 extra={"event": "watch.fired", "fields": {"model_id": self.model_id, "path": row.path,
                                                           "trigger_id": row.trigger_id}})

    # -- the store -------------------------------------------------------------------------------

    def _row(self, key: str) -> SeenFileRow | None:
        with self.store.session() as s:
            return s.scalars(select(SeenFileRow).where(SeenFileRow.key == key)).first()

    def _insert(self, path: str, stat: tuple[int, int]) -> SeenFileRow | None:
        fingerprint = _fingerprint(stat)
        row = SeenFileRow(
            key=seen_key(self.model_id, path, fingerprint), model_id=self.model_id, folder=str(self.folder),
            path=path, fingerprint=fingerprint, trigger_id=f"new-data:{uuid.uuid4()}", state=PENDING, attempts=0,
        )
        try:
            with self.store.session() as s:
                s.add(row)
        except MlcError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return None
            raise
        return row

    def _update(self, row_id: int, *, delete: bool = False, **values: Any) -> None:
        with self.store.session() as s:
            row = s.get(SeenFileRow, row_id)
            if row is None:
                return
            if delete:
                s.delete(row)
                return
            for key, value in values.items():
                setattr(row, key, value)

    def fired_files(self) -> list[str]:
        """Paths fired for this folder and model, oldest first."""
        with self.store.session() as s:
            return list(s.scalars(select(SeenFileRow.path).where(
                SeenFileRow.model_id == self.model_id, SeenFileRow.folder == str(self.folder),
                SeenFileRow.state == FIRED,
            ).order_by(SeenFileRow.id)))

    # -- the daemon ------------------------------------------------------------------------------

    def start_observer(self) -> None:
        """Follow the folder's events (inotify on Linux, else what watchdog has), then scan it."""
        from watchdog.events import FileClosedEvent, FileCreatedEvent, FileModifiedEvent, FileMovedEvent
        from watchdog.observers import Observer

        watcher = self

        class _Handler:
            def dispatch(self, event: Any) -> None:
                if event.is_directory:
                    return
                if isinstance(event, FileMovedEvent):
                    watcher.note(event.dest_path)
                elif isinstance(event, FileClosedEvent):
                    watcher.note(event.src_path, writing=False)
                elif isinstance(event, FileModifiedEvent):
                    watcher.note(event.src_path, writing=True)
                elif isinstance(event, FileCreatedEvent):
                    watcher.note(event.src_path)

        observer = Observer()
        self.closes_reported = type(observer).__name__ == "InotifyObserver"
        observer.schedule(_Handler(), str(self.folder), recursive=False,  # type: ignore[arg-type]
                          event_filter=[FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent])
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.scan()  # after the observer: a file arriving in between is seen by one or the other

    def stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def run(self, stop: "GracefulStop", status: "StatusFile | None" = None) -> None:
        """Watch until a stop is requested; never dies of an engine or store outage."""
        self.start_observer()
        log.info("watching %s for model %s (settle %.3g s, close-writes %s)", self.folder, self.model_id,
                 self.settle_s, "reported" if self.closes_reported else "not reported")
        rounds = 0
        try:
            while not stop.requested.is_set():
                self._wake.clear()
                report = RoundReport()
                try:
                    report = self.check()
                except Exception as exc:  # a bug or a store outage: log it and keep the daemon alive
                    log.exception("watch round failed")
                    report.errors.append(first_line(exc, typed=True))
                rounds += 1
                if status is not None:
                    status.write({
                        "name": self.name, "kind": TRIGGER, "folder": str(self.folder), "model_id": self.model_id,
                        "settle_s": self.settle_s, "rounds": rounds, "fired": self.fired_total,
                        "waiting": report.waiting, "errors": report.errors,
                    })
                if not stop.requested.is_set():
                    self._wake.wait(BUSY_WAIT_S if report.waiting else IDLE_WAIT_S)
        finally:
            self.stop_observer()
            if status is not None:
                status.remove()


def _fingerprint(stat: tuple[int, int]) -> str:
    return f"{stat[0]}:{stat[1]}"


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
