"""What every ticket system shares: the Ticket and TicketContext models, the normalised states,
the TicketSystem protocol and the errors a system raises.

    TicketError                  (modelops_mlc.errors) anything a ticket system refuses
    └── TicketSystemUnavailable  the system cannot be reached or answers 5xx: worth retrying
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from modelops_mlc.errors import TicketError, UsageError

__all__ = [
    "SYSTEMS",
    "Ticket",
    "TicketContext",
    "TicketState",
    "TicketSystem",
    "TicketSystemUnavailable",
    "choose_system",
    "cockpit_link",
    "model_from_labels",
    "run_link",
    "model_label",
    "normalise_state",
    "standard_labels",
    "version_label",
]

SYSTEMS = ("local", "jira", "servicenow")


class TicketSystemUnavailable(TicketError):
    """The ticket system cannot be reached (connection refused, timeout, 5xx); retrying may help."""

    retryable = True


class TicketState(str, Enum):
    """The four states every system is mapped onto."""

    OPEN = "Open"
    IN_PROGRESS = "In Progress"
    DONE = "Done"
    REJECTED = "Rejected"

    @property
    def terminal(self) -> bool:
        return self in (TicketState.DONE, TicketState.REJECTED)


_STATE_ALIASES = {
    "open": TicketState.OPEN,
    "new": TicketState.OPEN,
    "to do": TicketState.OPEN,
    "todo": TicketState.OPEN,
    "in progress": TicketState.IN_PROGRESS,
    "in-progress": TicketState.IN_PROGRESS,
    "in_progress": TicketState.IN_PROGRESS,
    "inprogress": TicketState.IN_PROGRESS,
    "progress": TicketState.IN_PROGRESS,
    "done": TicketState.DONE,
    "closed": TicketState.DONE,
    "resolved": TicketState.DONE,
    "rejected": TicketState.REJECTED,
    "reject": TicketState.REJECTED,
    "won't do": TicketState.REJECTED,
    "wont do": TicketState.REJECTED,
    "canceled": TicketState.REJECTED,
    "cancelled": TicketState.REJECTED,
}


def normalise_state(value: str | TicketState) -> TicketState:
    """Accept the canonical names case-insensitively plus common aliases; otherwise UsageError."""
    if isinstance(value, TicketState):
        return value
    found = _STATE_ALIASES.get(str(value).strip().lower())
    if found is None:
        allowed = ", ".join(s.value for s in TicketState)
        raise UsageError(f"unknown ticket state {value!r}; use one of: {allowed}")
    return found


class TicketContext(BaseModel):
    """The model context every ticket carries; rendered into the description by one template."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    model_id: str | None = None
    model_version: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    verdict: Any = None  # the DMN result map {"passed": ..., "reason": ...}, or its JSON
    reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    process_instance_id: str | None = None
    process_key: str | None = None
    cockpit_url: str | None = None
    run_id: str | None = None  # the MLflow run behind the ticket (test, scan or training run)
    run_url: str | None = None  # its page in the MLflow UI, when MLflow is a server
    kind: str | None = None

    def with_cockpit(self, engine_url: str) -> "TicketContext":
        """A copy whose ``cockpit_url`` points at the process instance (when one is known)."""
        if self.cockpit_url or not self.process_instance_id:
            return self
        return self.model_copy(update={"cockpit_url": cockpit_link(engine_url, self.process_instance_id)})


class Ticket(BaseModel):
    """A ticket in any system, with its state normalised."""

    key: str
    system: str
    title: str
    description: str = ""
    state: TicketState
    labels: list[str] = Field(default_factory=list)
    model_id: str | None = None
    model_version: str | None = None
    process_instance_id: str | None = None
    url: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    raw_state: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    # Who moved the ticket into its current Done or Rejected state, as the system reports it (Jira's
    # changelog, ServiceNow's resolved_by / closed_by, the local ticket's audit trail); every
    # identity the system gave for that user (user name, e-mail, account id) is in resolved_by_ids.
    resolved_by: str | None = None
    resolved_by_ids: list[str] = Field(default_factory=list)


@runtime_checkable
class TicketSystem(Protocol):
    """Operations the processes need from a ticket system."""

    name: str

    def create(
        self,
        title: str,
        description: str,
        labels: list[str],
        context: TicketContext,
        dedupe_key: str | None = None,
    ) -> Ticket: ...

    def get(self, key: str) -> Ticket: ...

    def transition(self, key: str, state: str | TicketState, comment: str | None = None) -> Ticket: ...

    def comment(self, key: str, text: str) -> None: ...

    def search(self, model_id: str | None = None, state: str | TicketState | None = None) -> list[Ticket]: ...

    def close(self) -> None: ...


def choose_system(name: str | None, *, jira: bool = False, servicenow: bool = False) -> str | None:
    """The ticket system a ticket goes to: ``name`` when given; else Jira for a model tagged
    ``jira=true`` and ServiceNow for ``servicenow=true``; else None (the default system)."""
    if name and str(name).strip():
        return str(name).strip().lower()
    if jira and servicenow:
        raise UsageError("the model is tagged both jira=true and servicenow=true; keep one, or set TICKET_SYSTEM")
    if jira:
        return "jira"
    if servicenow:
        return "servicenow"
    return None


def run_link(tracking_uri: str, experiment_id: str | None, run_id: str) -> str | None:
    """The MLflow UI page of a run, when MLflow is a server (an http(s) tracking URI)."""
    if not tracking_uri.startswith(("http://", "https://")) or not experiment_id:
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def cockpit_link(engine_url: str, process_instance_id: str) -> str:
    """Cockpit page of a process instance, from the engine's REST base (a cluster's first node)."""
    base = engine_url.split(",")[0].strip().rstrip("/")
    if base.endswith("/engine-rest"):
        base = base[: -len("/engine-rest")]
    return f"{base}/camunda/app/cockpit/default/#/process-instance/{process_instance_id}"


_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


def model_label(model_id: str) -> str:
    """The label that marks a ticket as being about a model (Jira labels allow no spaces)."""
    return "mlc-model-" + _LABEL_BAD.sub("-", model_id.strip())


def version_label(version: str) -> str:
    return "mlc-version-" + _LABEL_BAD.sub("-", str(version).strip())


def standard_labels(labels: list[str] | None, context: TicketContext) -> list[str]:
    """The caller's labels plus ``mlc`` and the model/version labels, without duplicates."""
    result: list[str] = []
    for label in ["mlc", *(labels or [])]:
        clean = _LABEL_BAD.sub("-", str(label).strip())
        if clean and clean not in result:
            result.append(clean)
    if context.model_id and model_label(context.model_id) not in result:
        result.append(model_label(context.model_id))
    if context.model_version and version_label(context.model_version) not in result:
        result.append(version_label(context.model_version))
    return result


def model_from_labels(labels: list[str]) -> tuple[str | None, str | None]:
    model = next((lb[len("mlc-model-") :] for lb in labels if lb.startswith("mlc-model-")), None)
    version = next((lb[len("mlc-version-") :] for lb in labels if lb.startswith("mlc-version-")), None)
    return model, version
