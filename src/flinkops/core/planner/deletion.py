"""Deleting a resource: stop what runs for it, then let the resource go. Checkpoints and savepoints are kept.

The current status is written as the intent first, so a deletion interrupted between its actions is simply
planned again. Called by: ``deployment.plan_deployment`` and ``session.plan_session_job`` once the resource has
a deletion timestamp. Pure: no I/O, no clock.
"""

from __future__ import annotations

from flinkops.core.planner.types import Action, Builder, Context, Plan, RemoveResource

__all__ = ["plan_deletion"]


def plan_deletion(b: Builder, ctx: Context, *, stop: Action | None, message: str) -> Plan:
    """``stop``: what ends the running cluster or job first (None when nothing runs)."""
    b.intent = b.status
    if stop is not None:
        b.actions.append(stop)
    b.actions.append(RemoveResource())
    b.event("Normal", "Cleanup", message)
    b.summary = "delete"
    return b.finish(deleting=True, now_ms=ctx.now_ms)
