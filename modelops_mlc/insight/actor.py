"""Who is acting, for the audit log: a context variable, a process default and ``MLC_ACTOR``.

The CLI entry point sets the OS user (or ``--user`` / ``MLC_USER``); on an engine with basic
auth it is always the signed-in engine user (:func:`cli_user`), so a submitter cannot name somebody
else and approve their own model. ``mlc worker`` sets its worker id; :func:`acting_as` narrows it
for a block (one task of one process instance). Light on purpose: the CLI imports it on every
command, and reads the settings only once an actor is needed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import getpass
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["ACTOR_ENV", "Actor", "acting_as", "actor_name", "cli_actor", "cli_user", "current_actor",
           "set_default_actor"]

ACTOR_ENV = "MLC_ACTOR"  # inherited by the processes an entry point starts (the worker's process pool)


@dataclass(frozen=True)
class Actor:
    """``user:alice``, ``worker:host-123``; with the process instance it acts for, when known."""

    name: str
    process_instance_id: str | None = None


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("mlc_actor", default=None)
_default: Actor | None = None
_signed_in: Callable[[], str | None] = lambda: None  # the engine user an `mlc` command signs in as (basic auth)
_lazy_cli_user = False  # the CLI's default actor waits for the first current_actor()


def set_default_actor(name: str) -> None:
    """The actor of this process wherever no :func:`acting_as` block says otherwise (threads included)."""
    global _default, _lazy_cli_user
    _default, _lazy_cli_user = Actor(name), False
    os.environ[ACTOR_ENV] = name


def current_actor() -> Actor:
    """The acting block's actor, else the process default, else ``MLC_ACTOR``, else the OS user."""
    found = _actor.get() or _default
    if found is not None:
        return found
    if _lazy_cli_user:
        set_default_actor(f"user:{cli_user()}")
        return current_actor()
    return Actor(os.environ.get(ACTOR_ENV) or f"user:{os_user()}")


def actor_name(given: str | None = None) -> str:
    """``given``, else the current actor's name: what a record of who did something keeps."""
    return given or current_actor().name


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@contextlib.contextmanager
def acting_as(name: str, process_instance_id: str | None = None) -> Iterator[Actor]:
    """Attribute the changes made inside the block to ``name`` (and ``process_instance_id``)."""
    actor = Actor(name, process_instance_id)
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def cli_actor(command: str | None, user: str | None, settings: "Callable[[], Settings] | None" = None) -> None:
    """Set the actor of an ``mlc`` invocation: the worker daemon acts as ``worker:<host>-<pid>``
    (its default worker id), every other command as :func:`cli_user` of ``user`` (``--user`` /
    ``MLC_USER``). ``settings`` are read when they matter: at once for a given ``user`` (refused
    before the command changes anything), else at the first :func:`current_actor`."""
    global _default, _signed_in, _lazy_cli_user
    if command == "worker":
        set_default_actor(f"worker:{socket.gethostname()}-{os.getpid()}")
        return
    if settings is not None:
        _signed_in = functools.cache(lambda: _engine_user(settings()))
    if user is not None:
        set_default_actor(f"user:{cli_user(user)}")
    else:
        os.environ[ACTOR_ENV] = f"user:{os_user()}"  # what child processes inherit until the settings are read
        _default, _lazy_cli_user = None, True


def _engine_user(settings: "Settings") -> str | None:
    return settings.engine_user if settings.engine_auth == "basic" else None


def cli_user(user: str | None = None, doing: str = "act") -> str:
    """Who an ``mlc`` command acts as (no ``user:`` prefix): on an engine with basic auth the
    signed-in engine user, and a ``user`` naming anybody else is refused (``doing`` words the
    refusal: "complete a task"); else ``user``, else the actor already set, else the OS user."""
    from modelops_mlc.errors import UsageError

    signed_in = _signed_in()
    wanted = (user or "").strip()
    if user is not None and not wanted:
        raise UsageError("--user must not be empty")
    if signed_in is not None:
        if wanted and wanted.lower() != signed_in.lower():
            raise UsageError(f"you are signed in to the engine as {signed_in}: you cannot {doing} as {wanted}",
                             hint=f"sign in as {wanted} (MLC_ENGINE_USER and MLC_ENGINE_PASSWORD), or drop --user")
        return signed_in
    if wanted:
        return wanted
    found = _actor.get() or _default
    return found.name.removeprefix("user:") if found is not None and found.name.startswith("user:") else os_user()
