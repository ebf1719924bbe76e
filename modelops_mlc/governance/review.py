"""Who may approve a review: separation of duties, shared by the CLI and the ticket watcher (the
engine enforces the same rule with a task listener on the review task, see bpmn/README.md)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SEPARATION_OF_DUTIES_PREFIX", "separation_of_duties_refusal"]

SEPARATION_OF_DUTIES_PREFIX = "Separation of duties:"
CLAIM_FIRST = "claim the task (or pass --user) first"


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and str(a).strip().lower() == str(b).strip().lower()


def separation_of_duties_refusal(
    *, enforced: bool, submitter: str | None, approver: str | None, model: str | None = None, version: object = None,
    also_known_as: Iterable[str] = (), unknown_hint: str = CLAIM_FIRST,
) -> str | None:
    """The refusal to show when ``approver`` (who may also be known by the identities in
    ``also_known_as``) may not approve what ``submitter`` submitted, else None."""
    if not enforced:
        return None
    what = f"{model}/{version}" if model and version is not None else (model or "this model")
    if not approver:
        return f"{SEPARATION_OF_DUTIES_PREFIX} the approver of {what} must be known; {unknown_hint}"
    if any(_same(submitter, who) for who in (approver, *also_known_as)):
        return (f"{SEPARATION_OF_DUTIES_PREFIX} {approver} submitted {what} and cannot approve it; "
                "another reviewer must")
    return None
