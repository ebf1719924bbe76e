"""What a handler changes is audited as the worker acting for the task's process instance."""

from __future__ import annotations

import asyncio

from modelops_mlc.insight.actor import current_actor
from workers.daemon.outcome import call_async_handler, call_handler
from workers.handlers import TaskContext


def _ctx(settings) -> TaskContext:
    return TaskContext(topic="t", task_id="task-1", process_instance_id="pi-7", activity_id="a",
                       activity_instance_id="a:1", variables={}, settings=settings, worker_id="w-1")


def test_plain_and_async_handlers_act_as_the_worker_for_their_instance(settings) -> None:
    def plain(ctx):
        actor = current_actor()
        return {"WHO": actor.name, "FOR": actor.process_instance_id}

    async def coroutine(ctx):
        return plain(ctx)

    for outcome in (call_handler(plain, _ctx(settings)), asyncio.run(call_async_handler(coroutine, _ctx(settings)))):
        assert outcome.variables == {"WHO": "worker:w-1", "FOR": "pi-7"}
    assert current_actor().process_instance_id is None  # only inside the task
