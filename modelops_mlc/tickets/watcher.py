"""The ticket watcher: polls the tickets that processes wait on and delivers their final states as
message ``mlc.ticket-updated`` (correlation key ``TICKET_KEY``, variable ``TICKET_STATE``).

A change is delivered once: the last delivered state is stored per ticket before the next poll,
so a restarted watcher does not resend it. Only decisions (Done, Rejected) are delivered; a ticket
moving to In Progress is recorded but keeps the process waiting. A ticket system that is down is
skipped with exponential backoff (capped) and the watcher keeps going.

A review ticket (label ``mlc-review``) is a review like the user task: who decided it (the
ticket system's resolver) is delivered as ``APPROVED_BY``, and under separation of duties
(the process's ``SEPARATION_OF_DUTIES``) an approval by the submitter (``SUBMITTED_BY``), or by
nobody the system names, is refused: it is not delivered, the ticket gets a comment saying why,
and the process keeps waiting for another reviewer to resolve the ticket.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelops_mlc.errors import (
    EngineAuthError,
    EngineError,
    EngineUnavailable,
    MlcError,
    NotFoundError,
    TicketError,
)
from modelops_mlc.governance import separation_of_duties_refusal
from modelops_mlc.insight.actor import acting_as
from modelops_mlc.store import open_store, utcnow
from modelops_mlc.tickets import get_ticket_system
from modelops_mlc.tickets._http import TicketAuthError, TicketNotFound
from modelops_mlc.tickets.base import Ticket, TicketState, TicketSystem, TicketSystemUnavailable
from modelops_mlc.tickets.models import TicketLinkRow
from modelops_mlc.tickets.template import redact

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.daemon import GracefulStop, StatusFile
    from modelops_mlc.engine import EngineClient

__all__ = ["MESSAGE", "TicketWatcher", "WatchReport"]

log = logging.getLogger(__name__)

MESSAGE = "mlc.ticket-updated"
REVIEW_LABEL = "mlc-review"  # what create-ticket labels a ticket of TICKET_KIND review
APPROVED_BY = "APPROVED_BY"  # the reviewer, as the review user task's listener records it
_REVIEW_FACTS = ("SEPARATION_OF_DUTIES", "SUBMITTED_BY", "MODEL_ID", "MODEL_VERSION")
_UNKNOWN_RESOLVER = "the ticket system does not say who resolved the ticket"
DELIVERED_STATES = (TicketState.DONE, TicketState.REJECTED)
MIN_INTERVAL = 0.2
MAX_INTERVAL = 3600.0
_ENDED = ("COMPLETED", "EXTERNALLY_TERMINATED", "INTERNALLY_TERMINATED")


@dataclass
class WatchReport:
    """What one polling round did."""

    checked: int = 0
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (ticket key, state)
    pending: list[str] = field(default_factory=list)  # changed, but no process waits (yet)
    closed: list[str] = field(default_factory=list)  # process instance gone: no longer watched
    refused: list[tuple[str, str]] = field(default_factory=list)  # (ticket key, why): review not counted
    skipped_systems: list[str] = field(default_factory=list)  # down, backing off
    errors: list[str] = field(default_factory=list)


@dataclass
class _Backoff:
    failures: int = 0
    until: float = 0.0


class TicketWatcher:
    """Follows waiting tickets in every ticket system; ``run_once()`` is one round."""

    def __init__(
        self,
        settings: "Settings",
        engine_client: "EngineClient",
        *,
        interval: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine_client
        self.store = open_store(settings)
        self.interval = _clamp(interval if interval is not None else settings.ticket_watch_interval)
        self.max_backoff = max(self.interval, _clamp(max_backoff or settings.ticket_watch_max_backoff))
        self._systems: dict[str, TicketSystem] = {}
        self._backoff: dict[str, _Backoff] = {}
        self._engine_backoff = _Backoff()
        self._reviews: dict[str, dict[str, Any]] = {}  # process instance -> its _REVIEW_FACTS (fixed while it waits)

    # -- one round --------------------------------------------------------------------------

    def run_once(self) -> WatchReport:
        report = WatchReport()
        now = time.monotonic()
        if self._engine_backoff.until > now:
            report.skipped_systems.append("engine")
            return report
        with self.store.session() as s:
            rows = list(s.scalars(select(TicketLinkRow).where(TicketLinkRow.watch == "waiting")))
        engine_failed = False
        by_system: dict[str, list[TicketLinkRow]] = {}
        for row in rows:
            by_system.setdefault(row.system, []).append(row)
        for system_name, links in sorted(by_system.items()):
            backoff = self._backoff.setdefault(system_name, _Backoff())
            if backoff.until > now:
                report.skipped_systems.append(system_name)
                continue
            try:
                self._poll_system(system_name, links, report)
            except (EngineUnavailable, EngineAuthError) as exc:
                engine_failed = True
                self._fail(self._engine_backoff, "engine", exc, report)
                break
            except MlcError as exc:
                self._fail(backoff, system_name, exc, report)
                continue
            if backoff.failures:
                log.info("ticket system %s answers again; resuming normal polling", system_name)
            backoff.failures, backoff.until = 0, 0.0
        if self._engine_backoff.failures and not engine_failed:
            log.info("the engine answers again; resuming normal polling")
            self._engine_backoff = _Backoff()
        return report

    def _poll_system(self, system_name: str, links: list[TicketLinkRow], report: WatchReport) -> None:
        system = self._system(system_name)
        get_many = getattr(system, "get_many", None)  # one request for many tickets where the API allows
        batch = get_many([link.key for link in links]) if get_many and len(links) > 1 else {}
        for link in links:
            report.checked += 1
            try:
                ticket = batch.get(link.key) or system.get(link.key)
            except TicketNotFound:
                log.warning("ticket %s (%s) no longer exists; no longer watched", link.key, system_name)
                self._update(link.id, watch="closed", last_error="ticket not found")
                report.closed.append(link.key)
                continue
            except (TicketSystemUnavailable, TicketAuthError):
                raise  # the whole system: back off
            except TicketError as exc:  # this ticket only: note it and go on with the others
                message = redact(exc.message, self.settings)
                log.warning("ticket %s (%s): %s", link.key, system_name, message)
                self._update(link.id, last_error=message[:1000])
                report.errors.append(f"{system_name} {link.key}: {message}")
                continue
            state = ticket.state
            if state.value != link.last_seen_state:
                log.info("ticket %s (%s) is now %s", link.key, system_name, state.value)
                self._update(link.id, last_seen_state=state.value)
            if state not in DELIVERED_STATES or state.value == link.last_delivered_state:
                continue
            self._deliver(system, link, ticket, report)

    def _deliver(self, system: TicketSystem, link: TicketLinkRow, ticket: Ticket, report: WatchReport) -> None:
        state = ticket.state
        variables: dict[str, Any] = {"TICKET_STATE": state.value}
        review = REVIEW_LABEL in ticket.labels
        if review:
            refusal = self._refusal(link, ticket)
            if refusal:
                self._refuse(system, link, refusal, report)
                return
            if ticket.resolved_by:
                variables[APPROVED_BY] = ticket.resolved_by
        try:
            self.engine.correlate_message(MESSAGE, correlation_keys={"TICKET_KEY": link.key}, variables=variables)
        except (EngineUnavailable, EngineAuthError):
            raise
        except EngineError as exc:
            if self._instance_gone(link.process_instance_id):
                log.info("ticket %s: process instance %s has ended; no longer watched", link.key, link.process_instance_id)
                self._update(link.id, watch="closed", last_error=None)
                report.closed.append(link.key)
                return
            # Not waiting yet (the create-ticket task may still be completing): try next round.
            message = redact(exc.message, self.settings)
            log.debug("ticket %s: %s not correlated yet: %s", link.key, state.value, message)
            self._update(link.id, last_error=message[:1000])
            report.pending.append(link.key)
            return
        log.info("ticket %s: delivered %s to process instance %s%s", link.key, state.value, link.process_instance_id,
                 f" (reviewed by {ticket.resolved_by})" if review and ticket.resolved_by else "")
        reviewer = f"user:{ticket.resolved_by}" if review and ticket.resolved_by else None
        audited_as = acting_as(reviewer, link.process_instance_id) if reviewer else contextlib.nullcontext()
        with audited_as:  # the audit row of the delivered review names its reviewer
            self._update(
                link.id, last_delivered_state=state.value, delivered_at=utcnow(), watch="delivered", last_error=None
            )
        report.delivered.append((link.key, state.value))
        self._reviews.pop(link.process_instance_id or "", None)

    def _refusal(self, link: TicketLinkRow, ticket: Ticket) -> str | None:
        """Why an approval (Done) of a review ticket does not count, under the process's separation of duties."""
        if ticket.state is not TicketState.DONE or not link.process_instance_id:
            return None
        facts = self._reviews.get(link.process_instance_id)
        if facts is None:
            try:
                found = self.engine.variables(link.process_instance_id)
            except NotFoundError:
                return None  # the instance is gone: delivery finds that out and stops watching
            facts = self._reviews[link.process_instance_id] = {k: found.get(k) for k in _REVIEW_FACTS}
        return separation_of_duties_refusal(
            enforced=facts["SEPARATION_OF_DUTIES"] is True, submitter=facts["SUBMITTED_BY"],
            approver=ticket.resolved_by, also_known_as=ticket.resolved_by_ids, model=facts["MODEL_ID"],
            version=facts["MODEL_VERSION"], unknown_hint=_UNKNOWN_RESOLVER)

    def _refuse(self, system: TicketSystem, link: TicketLinkRow, refusal: str, report: WatchReport) -> None:
        """Tell the ticket once why its approval is not counted; the process keeps waiting."""
        if link.last_error == refusal:
            return  # already said, and nothing changed since
        log.warning("ticket %s: %s; the approval is not counted", link.key, refusal)
        try:
            system.comment(link.key, f"{refusal}. This approval is not counted and the process keeps waiting: "
                                     "reopen the ticket and have another reviewer resolve it.")
        except (TicketSystemUnavailable, TicketAuthError):
            raise  # the whole system: back off
        except TicketError as exc:  # the refusal stands; the comment is tried again next round
            report.errors.append(f"{link.system} {link.key}: {redact(exc.message, self.settings)}")
            return
        self._update(link.id, last_error=refusal)
        report.refused.append((link.key, refusal))

    def _instance_gone(self, instance_id: str | None) -> bool:
        if not instance_id:
            return False
        try:
            instance = self.engine.history_instance(instance_id)
        except NotFoundError:
            return True
        return str(instance.state or "").upper() in _ENDED

    # -- the daemon -------------------------------------------------------------------------

    def run(self, stop: "GracefulStop", status: "StatusFile | None" = None) -> None:
        """Poll until a stop is requested (a round under way finishes first); never dies of a
        ticket system or engine outage. ``status`` is rewritten after every round."""
        log.info("ticket watcher polling every %.1f s (backoff up to %.0f s)", self.interval, self.max_backoff)
        rounds = delivered = 0
        try:
            while not stop.requested.is_set():
                try:
                    report = self.run_once()
                    rounds += 1
                    delivered += len(report.delivered)
                    if report.delivered:
                        log.info("delivered %d ticket change(s)", len(report.delivered))
                    if status is not None:
                        status.write({
                            "name": "ticket-watcher", "interval_s": self.interval,
                            "rounds": rounds, "delivered": delivered, "checked": report.checked,
                            "skipped_systems": report.skipped_systems, "errors": report.errors,
                        })
                except Exception:  # a bug or a store outage: log it and keep the daemon alive
                    log.exception("ticket watcher round failed")
                stop.requested.wait(self.next_wait())
        finally:
            if status is not None:
                status.remove()
            self.close()

    def next_wait(self) -> float:
        """Seconds until the next round; backoffs (multiples of the interval) are checked each round."""
        return self.interval

    def close(self) -> None:
        for system in self._systems.values():
            close = getattr(system, "close", None)
            if close:
                close()
        self._systems.clear()

    # -- helpers ----------------------------------------------------------------------------

    def _system(self, name: str) -> TicketSystem:
        if name not in self._systems:
            self._systems[name] = get_ticket_system(self.settings, name)
        return self._systems[name]

    def _fail(self, backoff: _Backoff, name: str, exc: MlcError, report: WatchReport) -> None:
        backoff.failures += 1
        delay = min(self.max_backoff, self.interval * (2 ** (backoff.failures - 1)))
        backoff.until = time.monotonic() + delay
        message = redact(exc.message, self.settings)
        level = logging.WARNING if backoff.failures == 1 or delay >= self.max_backoff else logging.INFO
        log.log(level, "%s: %s; next try in %.3g s (failure %d)", name, message, delay, backoff.failures)
        report.errors.append(f"{name}: {message}")

    def _update(self, link_id: int, **values: Any) -> None:
        with self.store.session() as s:
            row = s.get(TicketLinkRow, link_id)
            if row is None:
                return
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()


def _clamp(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, float(seconds)))
