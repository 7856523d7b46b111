"""Deleting a resource: stop what runs for it, then let the resource go. Checkpoints and savepoints are kept.

The current status is written as the intent first, so a deletion interrupted between its actions is simply
planned again. Called by: ``deployment.plan_deployment`` and ``session.plan_session_job`` once the resource has
a deletion timestamp. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime

from flinkops.core.planner.types import FAST, Action, Builder, Context, Plan, RemoveResource

__all__ = ["STOP_WAIT_MS", "plan_deletion", "plan_stop_before_deletion", "waited_ms"]

#: How long a deletion waits for what it stopped to reach its end before the resource goes regardless. Flink
#: itself gives up on tasks that ignore a cancel after ``task.cancellation.timeout`` (3 min by default).
STOP_WAIT_MS = 5 * 60_000


def plan_deletion(b: Builder, ctx: Context, *, stop: Action | None, message: str) -> Plan:
    """``stop``: what ends the running cluster or job first (None when nothing runs)."""
    b.intent = b.status
    if stop is not None:
        b.actions.append(stop)
    b.actions.append(RemoveResource())
    b.event("Normal", "Cleanup", message)
    b.summary = "delete"
    return b.finish(deleting=True, now_ms=ctx.now_ms)


def plan_stop_before_deletion(b: Builder, ctx: Context, *, stop: Action | None, what: str, message: str) -> Plan:
    """Deleting, but ``what`` still runs: ``stop`` it (None: it is stopping already) and look again soon. The
    resource stays until it has stopped, so a deletion that returned means nothing of it runs any more."""
    b.intent = b.status
    if stop is not None:
        b.actions.append(stop)
        b.event("Normal", "Cleanup", message)
    b.summary = f"delete: waiting for {what} to stop"
    b.requeue_after = FAST
    return b.finish(deleting=True, now_ms=ctx.now_ms)


def waited_ms(deletion_timestamp: str, now_ms: int) -> int:
    """Milliseconds since the deletion was asked for (0 when its timestamp cannot be read)."""
    try:
        asked = datetime.fromisoformat(deletion_timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return max(0, now_ms - int(asked.timestamp() * 1000))
