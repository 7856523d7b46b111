"""``FlinkDeploymentTrigger``: waits in the triggerer for a flinkops resource's real outcome.

It follows the resource (``flinkops.service.follow``: one watch of the object on Kubernetes, the local store read
every tenth of a second on this machine) and decides with ``flinkops.service.outcomes``: a batch job's FINISHED or
FAILED as Flink reported it, a streaming job judged STABLE, a resource deleted meanwhile. It fires one event:

    {"status": "done", "outcome": JobOutcome.as_dict()}      the answer (succeeded or failed, with the cause)
    {"status": "error", "message": "..."}                    the trigger could not follow (bad connection...)

With ``end_task=True`` (what ``FlinkDeploymentOperator`` asks for) a job that succeeded ends the task from the
triggerer itself (``TaskSuccessEvent``, the outcome as its return value), after the run record is closed and the
resource deleted per ``delete_on_termination``: no worker has to start the task again only to say "success", which
is most of the time between a job's end and its task's. A failed job still resumes the task, which fails in a worker
with Flink's root cause in its log and its exception (and is retried per the task's ``retries``).

Everything it needs is in ``serialize()``, so a restarted triggerer resumes following from the resource's state
(the answer is decided from recorded status and run history, not from events it might have missed). When a user
kills the deferred task (mark failed, clear), ``on_kill`` tears the resource down (after a savepoint, if asked).

The blocking flinkops calls run in threads (``asyncio.to_thread``): the triggerer's event loop is never blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from flinkops.ports import ResourceKey
from flinkops.service.outcomes import JobOutcome, WaitUntil, outcome, wait_until_of
from flinkops_airflow.hooks import FlinkopsHook, Resource

__all__ = ["FlinkDeploymentTrigger"]

T = TypeVar("T")
_END = object()
#: A Kubernetes watch lasts this long before it is renewed (re-reading the resource); a watch thread left behind by
#: a cancelled trigger (or a triggerer shutting down) ends within it.
FOLLOW_SECONDS = 15.0
#: Between two reads of the local store (each a fraction of a millisecond).
LOCAL_POLL_SECONDS = 0.1


async def _in_thread(items: Iterator[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator without blocking the event loop (each step in a worker thread)."""
    while True:
        item = await asyncio.to_thread(next, items, _END)
        if item is _END:
            return
        yield item  # type: ignore[misc]


class FlinkDeploymentTrigger(BaseTrigger):
    """Fires once the resource ``kind`` ``namespace/name`` has an outcome for ``generation`` (or later):
    ``wait_until`` ``finished`` (a batch job's end) or ``stable`` (a streaming job running and judged stable)."""

    def __init__(
        self,
        *,
        flinkops_conn_id: str,
        kind: str,
        namespace: str,
        name: str,
        generation: int,
        wait_until: str = "finished",
        delete_on_kill: bool = True,
        savepoint_on_kill: bool = False,
        wait_for_creation: bool = False,
        end_task: bool = False,
        delete_on_termination: str = "never",
    ) -> None:
        super().__init__()
        self.flinkops_conn_id = flinkops_conn_id
        self.kind, self.namespace, self.name = kind, namespace, name
        self.generation = generation
        self.wait_until: WaitUntil = wait_until_of(wait_until)
        self.delete_on_kill = delete_on_kill
        self.savepoint_on_kill = savepoint_on_kill
        #: A resource not there yet is waited for (a sensor on what another task creates), until it has been seen.
        self.wait_for_creation = wait_for_creation
        #: A job that succeeded ends the task here (see the module docstring); the resource is deleted first when
        #: ``delete_on_termination`` is ``on_success`` or ``always``.
        self.end_task = end_task
        self.delete_on_termination = delete_on_termination

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "flinkops_conn_id": self.flinkops_conn_id,
                "kind": self.kind,
                "namespace": self.namespace,
                "name": self.name,
                "generation": self.generation,
                "wait_until": self.wait_until,
                "delete_on_kill": self.delete_on_kill,
                "savepoint_on_kill": self.savepoint_on_kill,
                "wait_for_creation": self.wait_for_creation,
                "end_task": self.end_task,
                "delete_on_termination": self.delete_on_termination,
            },
        )

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.namespace, self.name)

    async def _hook(self) -> FlinkopsHook:
        settings = await FlinkopsHook.asettings(self.flinkops_conn_id)
        return FlinkopsHook(self.flinkops_conn_id, settings=settings)

    async def _versions(self, hook: FlinkopsHook) -> AsyncIterator[Resource | None]:
        """The resource now and as it changes, without a thread the event loop would have to wait for: locally
        one store read at a time (a fraction of a millisecond) between short sleeps; on Kubernetes a watch of
        the object, renewed every ``FOLLOW_SECONDS`` (a cancelled trigger's watch thread ends within that)."""
        if hook.settings.target == "local":
            while True:
                yield await asyncio.to_thread(hook.get, self.key)
                await asyncio.sleep(LOCAL_POLL_SECONDS)
        while True:
            async for resource in _in_thread(hook.follow(self.key, FOLLOW_SECONDS)):
                yield resource

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = await self._hook()
            self.log.info(
                "following %s until its job is %s (generation %s)", self.key, self.wait_until, self.generation
            )
            seen = False
            async for resource in self._versions(hook):
                if resource is None and self.wait_for_creation and not seen:
                    await asyncio.sleep(1.0)  # not created yet: look again
                    continue
                seen = True
                found = self._outcome(resource, closed=False)
                if found is None:
                    continue
                if self.end_task and found.succeeded:
                    closed = self._outcome(resource, closed=True)
                    if closed is None:  # FINISHED, its run record (duration, accumulators) closes in a moment
                        continue
                    await asyncio.to_thread(self._conclude, hook, closed)
                    yield TaskSuccessEvent(xcoms={"return_value": closed.as_dict()})
                    return
                yield TriggerEvent({"status": "done", "outcome": found.as_dict(), "generation": self.generation})
                return
        except Exception as exc:  # the task fails with what went wrong, instead of waiting out its timeout
            self.log.exception("following %s failed", self.key)
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})

    def _outcome(self, resource: Resource | None, *, closed: bool) -> JobOutcome | None:
        # ``closed=False``: a task resumed in a worker reads the closed run record itself (its start-up overlaps).
        return outcome(
            resource,
            self.wait_until,
            self.generation,
            kind=self.kind,
            namespace=self.namespace,
            name=self.name,
            closed=closed,
        )

    def _conclude(self, hook: FlinkopsHook, found: JobOutcome) -> None:
        """What the task would do on success before returning: log the result, delete per the policy."""
        self.log.info(
            "%s: %s (job %s, %s ms, accumulators %s)", self.key, found.state, found.job_id, found.duration_ms,
            found.accumulators,
        )  # fmt: skip
        ended = found.state in ("finished", "failed")
        if ended and self.delete_on_termination in ("on_success", "always") and hook.delete(self.key, wait=False):
            self.log.info("deleting %s (delete_on_termination=%s)", self.key, self.delete_on_termination)

    async def on_kill(self) -> None:
        """The deferred task was killed by a user: tear the resource down (a savepoint first when asked)."""
        if not self.delete_on_kill:
            return
        hook = await self._hook()
        await asyncio.to_thread(hook.tear_down, self.key, savepoint=self.savepoint_on_kill)
