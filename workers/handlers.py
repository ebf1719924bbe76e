"""Topic handlers: the decorator API, the task context a handler receives, and handler loading.

A handler is a plain function of one :class:`TaskContext` returning the process variables to
set (a mapping, or ``None``). It raises :class:`~modelops_mlc.errors.BpmnError` for a domain
failure the process models, and :class:`~modelops_mlc.errors.TaskFailed` (or any other
``Exception``) for a technical failure the engine retries::

    from workers.handlers import topic

    @topic("score-with-vendor", cpu_bound=False)
    def score_with_vendor(ctx):
        result = vendor_api.score(ctx.require("MODEL_ID"), dedupe=ctx.dedupe_key)
        return {"VENDOR_SCORE": result}

Start a worker with ``mlc worker start --handlers my_module`` (or ``my_module:handlers`` for a
:class:`TopicHandlers`, or ``my_module:HANDLERS`` for a ``{topic: function}`` mapping), or
publish the module under the entry-point group ``modelops_mlc.workers``.

Handlers may be ``async def`` (run on the event loop), plain functions (run in a thread) or,
with ``cpu_bound=True``, plain module-level functions run in the worker's process pool; the
context is pickled for those, so keep custom fields picklable.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from modelops_mlc.errors import TaskFailed, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = [
    "ENTRY_POINT_GROUP",
    "Handler",
    "HandlerResult",
    "TaskContext",
    "TopicHandler",
    "TopicHandlers",
    "default_handlers",
    "load_builtin_handlers",
    "load_entry_points",
    "load_handlers",
    "topic",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "modelops_mlc.workers"

BUILTIN_MODULES: tuple[str, ...] = (
    "workers.get_model",
    "workers.train",
    "workers.run_test",
    "workers.compare",
    "workers.deploy",
    "workers.score",
    "workers.drift",
    "workers.monitor",
    "workers.retrain",
    "workers.canary",
    "workers.scan",
    "workers.create_ticket",
    "workers.notify",
)

_MISSING = object()


@dataclass
class TaskContext:
    """One locked external task as a handler sees it: identity, typed variables and settings."""

    topic: str
    task_id: str
    process_instance_id: str
    activity_id: str
    activity_instance_id: str
    variables: dict[str, Any]
    settings: "Settings"
    worker_id: str = ""
    business_key: str | None = None
    process_definition_key: str | None = None
    retries: int | None = None  # retries left as the engine counts them; None on the first attempt
    extension_properties: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Key of this task's effect: the process instance and the activity (instance) it runs for.

        The activity instance id starts with the activity id and stays the same when the engine
        redelivers the task (lock expired, worker killed, incident retried); a process that loops
        back to the same activity gets a new one, so each pass has its own effect.
        """
        return f"{self.process_instance_id}:{self.activity_instance_id or self.activity_id}"

    @property
    def model_id(self) -> str | None:
        value = self.variables.get("MODEL_ID")
        return None if value is None else str(value)

    def get(self, name: str, default: Any = None) -> Any:
        """A variable, or ``default`` when it is missing or null."""
        value = self.variables.get(name)
        return default if value is None else value

    def require(self, name: str) -> Any:
        """A variable the process must set; its absence is a modelling error, hence an incident."""
        value = self.variables.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            raise TaskFailed(
                f"topic {self.topic!r} needs process variable {name} (activity {self.activity_id})",
                retryable=False,
            )
        return value


HandlerResult = Union[Mapping[str, Any], None]
Handler = Callable[[TaskContext], Union[HandlerResult, Awaitable[HandlerResult]]]


@dataclass(frozen=True)
class TopicHandler:
    """A handler bound to a topic, with how the runner must execute it."""

    topic: str
    func: Handler
    cpu_bound: bool = False  # run in the process pool (must be a module-level function)
    lock_duration_ms: int | None = None  # None: the worker's --lock-duration
    replay: bool = True  # remember the outcome by dedupe key and replay it on redelivery
    variables: tuple[str, ...] | None = None  # fetch only these variables (None: all)
    # the handler may import MLflow, so its thread imports the stack first, under the one lock
    # (registry.imports); False for a handler that never does, whose worker then never loads MLflow
    mlflow: bool = True

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def name(self) -> str:
        return f"{getattr(self.func, '__module__', '?')}.{getattr(self.func, '__qualname__', repr(self.func))}"


class TopicHandlers:
    """Topic name -> handler; ``@handlers.topic("name")`` registers a function."""

    def __init__(self) -> None:
        self._handlers: dict[str, TopicHandler] = {}

    def topic(
        self,
        name: str,
        *,
        cpu_bound: bool = False,
        lock_duration_ms: int | None = None,
        replay: bool = True,
        variables: tuple[str, ...] | list[str] | None = None,
        replace: bool = False,
        mlflow: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Decorator registering a handler for topic ``name``; returns the function unchanged.
        ``mlflow=False`` declares that the handler never imports MLflow (see :class:`TopicHandler`)."""

        def decorate(func: Handler) -> Handler:
            handler = TopicHandler(
                topic=name,
                func=func,
                cpu_bound=cpu_bound,
                lock_duration_ms=lock_duration_ms,
                replay=replay,
                variables=tuple(variables) if variables is not None else None,
                mlflow=mlflow,
            )
            self.add(handler, replace=replace)
            func.__mlc_handler__ = handler  # type: ignore[attr-defined]
            return func

        return decorate

    def add(self, handler: TopicHandler, *, replace: bool = False) -> None:
        if not handler.topic or not isinstance(handler.topic, str):
            raise UsageError(f"a topic name must be a non-empty string, got {handler.topic!r}")
        if handler.cpu_bound and inspect.iscoroutinefunction(handler.func):
            raise UsageError(f"topic {handler.topic!r}: an async handler cannot be cpu_bound")
        current = self._handlers.get(handler.topic)
        if current is not None and current.func is not handler.func and not replace:
            raise UsageError(
                f"topic {handler.topic!r} already has a handler ({current.name}); "
                f"register {handler.name} with replace=True to override it"
            )
        if current is not None and current.func is not handler.func:
            log.info("topic %s: handler %s replaces %s", handler.topic, handler.name, current.name)
        self._handlers[handler.topic] = handler

    def update(self, other: "TopicHandlers", *, replace: bool = True) -> None:
        for handler in other:
            self.add(handler, replace=replace)

    def get(self, name: str) -> TopicHandler:
        try:
            return self._handlers[name]
        except KeyError:
            raise UsageError(
                f"no handler for topic {name!r}", hint=f"known topics: {', '.join(sorted(self._handlers)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return list(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[TopicHandler]:
        return iter(list(self._handlers.values()))

    def __len__(self) -> int:
        return len(self._handlers)


default_handlers = TopicHandlers()
topic = default_handlers.topic


def load_builtin_handlers(handlers: TopicHandlers | None = None) -> TopicHandlers:
    """Import the nine built-in topic modules (they register on the default handlers)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    if handlers is not None and handlers is not default_handlers:
        for handler in default_handlers:
            if handler.func.__module__ in BUILTIN_MODULES:
                handlers.add(handler, replace=True)
    return default_handlers if handlers is None else handlers


def _import(spec: str) -> tuple[Any, str | None]:
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise UsageError(f"--handlers expects module or module:object, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import handler module {module_name!r}: {exc}") from exc
    if not attr:
        return module, None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"handler module {module_name!r} has no attribute {attr!r}") from None
    return obj, attr


def _register_object(obj: Any, handlers: TopicHandlers, source: str) -> list[str]:
    """Add what ``obj`` names: a TopicHandlers, a {topic: function} mapping or a decorated function."""
    if isinstance(obj, TopicHandlers):
        if obj is not handlers:
            handlers.update(obj, replace=True)
        return obj.names()
    if isinstance(obj, Mapping):
        added = []
        for name, func in obj.items():
            if isinstance(func, TopicHandler):
                handlers.add(func, replace=True)
            elif callable(func):
                handlers.add(TopicHandler(topic=str(name), func=func), replace=True)
            else:
                raise UsageError(f"{source}: value for topic {name!r} is not callable")
            added.append(str(name))
        return added
    if isinstance(obj, TopicHandler):
        handlers.add(obj, replace=True)
        return [obj.topic]
    known = getattr(obj, "__mlc_handler__", None)
    if callable(obj) and isinstance(known, TopicHandler):
        handlers.add(known, replace=True)
        return [known.topic]
    raise UsageError(
        f"{source} is not a TopicHandlers, a {{topic: function}} mapping or a function decorated with @topic"
    )


def _from_module(module_name: str, before: dict[str, Any], handlers: TopicHandlers) -> list[str]:
    """Handlers a module registered on the default handlers (on import now, or earlier)."""
    found = [h for h in default_handlers
             if before.get(h.topic) is not h.func or getattr(h.func, "__module__", None) == module_name]
    for handler in found:
        if handlers is not default_handlers:
            handlers.add(handler, replace=True)
    return [h.topic for h in found]


def load_handlers(specs: list[str] | tuple[str, ...], handlers: TopicHandlers | None = None) -> list[str]:
    """Import ``module`` or ``module:object`` specs into ``handlers``; returns the topics they provide."""
    handlers = default_handlers if handlers is None else handlers
    topics: list[str] = []
    for spec in specs:
        before = {h.topic: h.func for h in default_handlers}
        obj, attr = _import(spec)
        if attr is None:
            added = _from_module(obj.__name__, before, handlers)
            if not added:
                raise UsageError(f"handler module {spec!r} registers no topic", hint="decorate handlers with @topic(...)")
            topics.extend(added)
        else:
            topics.extend(_register_object(obj, handlers, spec))
    return topics


def load_entry_points(handlers: TopicHandlers | None = None) -> list[str]:
    """Load handlers published under the ``modelops_mlc.workers`` entry-point group."""
    from importlib.metadata import entry_points

    handlers = default_handlers if handlers is None else handlers
    topics: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        before = {h.topic: h.func for h in default_handlers}
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in is the user's to fix, not a crash of ours
            raise UsageError(f"cannot load worker entry point {ep.name!r} ({ep.value}): {exc}") from exc
        if inspect.ismodule(obj):
            topics.extend(_from_module(obj.__name__, before, handlers))
        else:
            topics.extend(_register_object(obj, handlers, f"entry point {ep.name}"))
    return topics
