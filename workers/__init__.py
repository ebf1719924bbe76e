"""The MLC external-task workers: topic handlers and the daemon that runs them.

``mlc worker start`` runs :class:`workers.runner.Worker` over the built-in handlers (one module
per topic) plus any custom ones registered with :func:`workers.handlers.topic`. Variable names
live in :mod:`workers.variables`.
"""

from workers.handlers import TaskContext, TopicHandlers, topic

__all__ = ["TaskContext", "TopicHandlers", "topic"]
