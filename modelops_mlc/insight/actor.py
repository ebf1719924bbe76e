"""Who is acting, for the audit log: a context variable, a process default and ``MLC_ACTOR``.

The CLI entry point sets the OS user (or ``--user`` / ``MLC_USER``); ``mlc worker`` sets its
worker id; :func:`acting_as` narrows it for a block (one task of one process instance). Light on
purpose: the CLI imports it on every command.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ACTOR_ENV", "Actor", "acting_as", "cli_actor", "current_actor", "set_default_actor"]

ACTOR_ENV = "MLC_ACTOR"  # inherited by the processes an entry point starts (the worker's process pool)


@dataclass(frozen=True)
class Actor:
    """``user:alice``, ``worker:host-123``; with the process instance it acts for, when known."""

    name: str
    process_instance_id: str | None = None


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("mlc_actor", default=None)
_default: Actor | None = None


def set_default_actor(name: str) -> None:
    """The actor of this process wherever no :func:`acting_as` block says otherwise (threads included)."""
    global _default
    _default = Actor(name)
    os.environ[ACTOR_ENV] = name


def current_actor() -> Actor:
    """The acting block's actor, else the process default, else ``MLC_ACTOR``, else the OS user."""
    found = _actor.get() or _default
    if found is not None:
        return found
    return Actor(os.environ.get(ACTOR_ENV) or f"user:{os_user()}")


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


def cli_actor(command: str | None, user: str | None) -> Actor:
    """Set the actor of an ``mlc`` invocation: the worker daemon acts as ``worker:<host>-<pid>``
    (its default worker id), every other command as ``user:<--user, MLC_USER or the OS user>``."""
    if command == "worker":
        set_default_actor(f"worker:{socket.gethostname()}-{os.getpid()}")
    else:
        set_default_actor(f"user:{user or os_user()}")
    return current_actor()
