"""Pre-started upgrades: the new generation's cluster starts next to the running job, before that job stops.

A savepoint or last-state upgrade of a running job first records, with the intent, that a prepared cluster was
asked for (``status.preparedCluster``) and plans only ``PrepareCluster``. The following passes wait for the
runtime to report that cluster ready, then stop the old job exactly as without it (stop with a savepoint, or
stop first for the last state), with ``DeleteCluster(keep_prepared=True)``; the deploy that follows promotes the
prepared cluster, so the job is down only for the stop and the job's own start. When the runtime refused (no
prepared cluster is seen) or the cluster is not ready within ``PRESTART_TIMEOUT_MS``, the upgrade goes on in the
usual order (a Warning event says why) and every delete takes the prepared cluster with it.

Called by: ``deployment`` (spec changes and resumed upgrades) and ``restore`` (which cluster a delete keeps).
Pure: no I/O, no clock. The restore point, the job id and the write-ahead intents are decided as without a
prepared cluster; this module only changes when the new processes start.
"""

from __future__ import annotations

from typing import Literal

from flinkops.api.flinkconf import prestart_enabled
from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobState,
    PreparedCluster,
    ReconciliationState,
    UpgradeMode,
)
from flinkops.core.planner.types import (
    NO_ERROR,
    Builder,
    Context,
    DeleteCluster,
    Observation,
    PrepareCluster,
    Status,
    job_running,
    set_recon,
    stateful,
)

__all__ = [
    "PRESTART_POLL",
    "PRESTART_TIMEOUT_MS",
    "delete_cluster",
    "prepared_state",
    "request_prepare",
    "waiting_for_prepared",
    "wants_prestart",
    "with_prepared",
    "without_prepared",
]

PRESTART_TIMEOUT_MS = 120_000  # the prepared cluster must be ready this long after it was asked for
PRESTART_POLL = 0.5  # seconds between looks at a prepared cluster that is starting (the old job still runs)


def wants_prestart(spec: FlinkDeploymentSpec, status: FlinkDeploymentStatus, obs: Observation, generation: int) -> bool:
    """An upgrade of a running stateful job to a running spec that has not asked for a prepared cluster yet."""
    if spec.job is None or spec.job.state != JobState.RUNNING or not stateful(spec.job.upgrade_mode):
        return False
    if not prestart_enabled(spec.flink_configuration):
        return False
    marker = status.prepared_cluster
    if marker is not None and marker.generation == generation:
        return False  # asked for already: used, or fallen back
    return obs.cluster_exists and job_running(obs) and bool(status.job_status.job_id)


def request_prepare(b: Builder, spec: FlinkDeploymentSpec, generation: int, ctx: Context, *, recorded: str) -> None:
    """Write the intent (target spec, UPGRADING, the prepared-cluster marker) and start the new cluster only."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    intent = set_recon(
        status, last_reconciled_spec=recorded, reconciliation_timestamp=ctx.now_ms, state=ReconciliationState.UPGRADING
    )
    marker = PreparedCluster(generation=generation, requested_at=ctx.now_ms)
    b.intent = intent.model_copy(update={"observed_generation": generation, "prepared_cluster": marker, **NO_ERROR})
    b.status = b.intent
    b.actions.append(PrepareCluster(spec=spec, generation=generation))
    job = status.job_status.job_id
    assert spec.job is not None
    then = "with a savepoint" if spec.job.upgrade_mode == UpgradeMode.SAVEPOINT else "for its newest checkpoint"
    b.event("Normal", "PrestartCluster", f"Upgrading: starting the new cluster first, then stop job {job} {then}")
    b.summary = "upgrade: pre-starting the new cluster"
    b.requeue_after = PRESTART_POLL


def waiting_for_prepared(status: FlinkDeploymentStatus, generation: int) -> PreparedCluster | None:
    """The marker of a prepared cluster this upgrade still waits for (neither used nor fallen back)."""
    marker = status.prepared_cluster
    if marker is None or marker.generation != generation or marker.used or marker.fallback:
        return None
    return marker


def prepared_state(
    marker: PreparedCluster, obs: Observation, ctx: Context
) -> tuple[Literal["ready", "starting", "fallback"], str]:
    """Whether the upgrade can stop the old job now, must wait, or goes on without the prepared cluster."""
    if obs.prepared_generation != marker.generation:
        return "fallback", "the runtime did not pre-start the new cluster (see the PrestartSkipped event)"
    if not job_running(obs) and not obs.prepared_ready:
        # The old job is down already (its JobManager died, it failed): waiting would only add downtime.
        return "fallback", "the old job stopped running while the new cluster started"
    if obs.prepared_ready:
        return "ready", "the new cluster is ready"
    waited = ctx.now_ms - marker.requested_at
    if waited >= PRESTART_TIMEOUT_MS:
        return "fallback", f"the pre-started cluster was not ready within {PRESTART_TIMEOUT_MS // 1000} s"
    return "starting", f"waiting for the pre-started cluster ({waited // 1000} s)"


def with_prepared(status: FlinkDeploymentStatus, *, used: bool = False, fallback: str | None = None) -> Status:
    marker = status.prepared_cluster
    assert marker is not None
    return status.model_copy(
        update={"prepared_cluster": marker.model_copy(update={"used": used, "fallback": fallback})}
    )


def without_prepared(status: Status) -> Status:
    if isinstance(status, FlinkDeploymentStatus) and status.prepared_cluster is not None:
        return status.model_copy(update={"prepared_cluster": None})
    return status


def delete_cluster(status: Status, reason: str) -> DeleteCluster:
    """The delete of an upgrade's old cluster: it keeps the prepared cluster the upgrade is about to promote."""
    marker = status.prepared_cluster if isinstance(status, FlinkDeploymentStatus) else None
    keep = marker is not None and marker.used and marker.generation == (status.observed_generation or 0)
    return DeleteCluster(reason=reason, keep_prepared=keep)
