"""One retrain per model: a claim row per model in the MLC store, held by a process instance.

Taking a claim is an INSERT on the model's primary key, so of two retrains that start together
exactly one wins. A claim whose holder is no longer active in the engine (it ended without
releasing, or was deleted from Cockpit) is taken over with a conditional UPDATE on the old
holder, which again only one contender can win.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from modelops_mlc.errors import MlcError
from modelops_mlc.retraining.models import RetrainClaimRow
from modelops_mlc.store import utcnow

if TYPE_CHECKING:
    from modelops_mlc.store import Store

__all__ = ["Claim", "claim", "holder_of", "release"]


class Claim(BaseModel):
    """Outcome of a claim attempt: ``claimed`` by us, else ``holder`` is the running retrain."""

    model_name: str
    claimed: bool
    holder: str
    taken_over_from: str | None = None


def holder_of(store: "Store", model_name: str) -> str | None:
    with store.session() as s:
        row = s.get(RetrainClaimRow, model_name)
        return None if row is None else row.holder


def _insert(store: "Store", model_name: str, holder: str) -> bool:
    try:
        with store.session() as s:
            s.add(RetrainClaimRow(model_name=model_name, holder=holder, claimed_at=utcnow()))
        return True
    except MlcError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            return False
        raise


def claim(store: "Store", model_name: str, holder: str, *, is_active: Callable[[str], bool],
          attempts: int = 5) -> Claim:
    """Claim ``model_name`` for process instance ``holder``; idempotent for the same holder.

    ``is_active(instance_id)`` tells whether a holder still runs in the engine.
    """
    for _ in range(attempts):
        if _insert(store, model_name, holder):
            return Claim(model_name=model_name, claimed=True, holder=holder)
        current = holder_of(store, model_name)
        if current is None:  # released between our insert and our read: try again
            continue
        if current == holder:
            return Claim(model_name=model_name, claimed=True, holder=holder)
        if is_active(current):
            return Claim(model_name=model_name, claimed=False, holder=current)
        with store.session() as s:
            taken = s.execute(
                update(RetrainClaimRow)
                .where(RetrainClaimRow.model_name == model_name, RetrainClaimRow.holder == current)
                .values(holder=holder, claimed_at=utcnow())
            ).rowcount
        if taken:
            return Claim(model_name=model_name, claimed=True, holder=holder, taken_over_from=current)
    raise MlcError(f"could not claim model {model_name!r} for a retrain after {attempts} attempts")


def release(store: "Store", model_name: str, holder: str) -> bool:
    """Give the claim back if ``holder`` has it; True when a claim was released."""
    with store.session() as s:
        return bool(s.execute(
            delete(RetrainClaimRow).where(RetrainClaimRow.model_name == model_name, RetrainClaimRow.holder == holder)
        ).rowcount)
