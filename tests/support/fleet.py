"""A fleet in a store, fast: deployments and session jobs with the status a controller would have recorded
(lifecycle, job state, the last checkpoint and savepoint, runs with restarts, an error), for the fleet page's
tests and its benchmark. Written through the store's own calls (``apply_all``, ``update_status``), so what the
page reads is exactly what a controller leaves.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from flinkops.api.models import (
    Checkpoint,
    CheckpointInfo,
    Condition,
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    JobStatus,
    LifecycleState,
    ReconciliationStatus,
    Savepoint,
    SavepointInfo,
)
from flinkops.core.specs import dump_reconciled_spec
from flinkops.ports import ResourceStore
from flinkops.ports.flink import JobFigures
from support.service import JOB, deployment, session_cluster, session_job

__all__ = ["JOB", "NOW_MS", "job_figures", "running_status", "store_fleet", "with_status"]

NOW_MS = 1_700_000_000_000  # the manual clock's start (support.service.ManualClock), in ms


def running_status(
    resource: FlinkDeployment,
    *,
    checkpoint_age_s: float = 12,
    savepoint_age_s: float | None = 3600,
    restarts: int = 0,
    error: str | None = None,
    lifecycle: LifecycleState = LifecycleState.STABLE,
    rest_url: str = "http://127.0.0.1:8081",
    state: str = "RUNNING",
) -> FlinkDeploymentStatus:
    """What a controller records for a deployment whose job runs: stable unless told otherwise."""
    spec = dump_reconciled_spec(resource.spec, first_deployment=True)
    savepoint = None
    if savepoint_age_s is not None:
        at = NOW_MS - int(savepoint_age_s * 1000)
        location = f"file:/state/{resource.metadata.name}/savepoints/savepoint-a1b2c3-0123456789ab"
        savepoint = SavepointInfo(last_savepoint=Savepoint(time_stamp=at, location=location, trigger_type="MANUAL"))
    runs = [DeploymentRecord(generation=1, job_id=JOB, reason="first-deploy", started_at=NOW_MS - 7_200_000,
                             running_at=NOW_MS - 7_190_000)]  # fmt: skip
    for i in range(restarts):
        stopped = NOW_MS - 3_600_000 + i * 60_000
        runs.append(
            DeploymentRecord(
                generation=1,
                job_id=JOB,
                reason="recover",
                stopped_at=stopped,
                started_at=stopped + 500,
                running_at=stopped + 4_200,
                restored_from=f"file:/state/chk-{i + 3}",
            )
        )
    return FlinkDeploymentStatus(
        job_status=JobStatus(
            job_id=JOB,
            state=state,  # type: ignore[arg-type]
            checkpoint_info=CheckpointInfo(
                last_checkpoint=Checkpoint(time_stamp=NOW_MS - int(checkpoint_age_s * 1000), trigger_type="PERIODIC")
            ),
            savepoint_info=savepoint,
        ),
        error=error,
        observed_generation=resource.metadata.generation,
        lifecycle_state=lifecycle,
        reconciliation_status=ReconciliationStatus(last_reconciled_spec=spec, last_stable_spec=spec),
        conditions=[Condition(type="Ready", status="True", reason="JobRunning", message="the job runs")],
        deployment_history=runs,
        cluster_info={"rest-url": rest_url},
        job_manager_deployment_status=JobManagerDeploymentStatus.READY,
    )


def with_status(store: ResourceStore, resource: FlinkDeployment, **facts: object) -> FlinkDeployment:
    """``resource`` (as stored) with ``running_status(**facts)`` written."""
    written = store.update_status(resource.model_copy(update={"status": running_status(resource, **facts)}))  # type: ignore[arg-type]
    assert isinstance(written, FlinkDeployment)
    return written


def store_fleet(store: ResourceStore, count: int, namespaces: Sequence[str] = ("default",)) -> None:
    """``count`` deployments across ``namespaces`` in ``store``, every tenth one with restarts and an error, plus
    one session cluster with a session job; all with a recorded status."""
    resources: list[FlinkDeployment | FlinkSessionJob] = []
    for i in range(count):
        d = deployment(f"job-{i:04d}", parallelism=1 + i % 8)
        ns = namespaces[i % len(namespaces)]
        resources.append(d.model_copy(update={"metadata": d.metadata.model_copy(update={"namespace": ns})}))
    resources += [session_cluster("session"), session_job("sj", "session")]
    apply_all = getattr(store, "apply_all", None)
    stored = apply_all(resources) if apply_all is not None else [store.apply(r) for r in resources]
    for i, resource in enumerate(stored):
        if isinstance(resource, FlinkSessionJob):
            status = FlinkSessionJobStatus(
                job_status=JobStatus(job_id=JOB, state="RUNNING"),
                observed_generation=1,
                lifecycle_state=LifecycleState.STABLE,
            )
            store.update_status(resource.model_copy(update={"status": status}))
        elif resource.spec.job is None:
            status = FlinkDeploymentStatus(
                observed_generation=1,
                lifecycle_state=LifecycleState.STABLE,
                job_manager_deployment_status=JobManagerDeploymentStatus.READY,
                cluster_info={"rest-url": "http://127.0.0.1:8082"},
            )
            store.update_status(resource.model_copy(update={"status": status}))
        else:
            troubled = i % 10 == 9
            with_status(
                store,
                resource,
                checkpoint_age_s=5 + i % 90,
                restarts=2 if troubled else 0,
                error="JobManager lost: recovered from the last checkpoint" if troubled else None,
            )


def job_figures(**known: Any) -> JobFigures:
    """A running job's live figures as the reader returns them: ``known`` set, every other figure unknown."""
    values: dict[str, Any] = {f.name: None for f in dataclasses.fields(JobFigures)}
    values.update(job_id=JOB, state="RUNNING", read_at=NOW_MS / 1000, vertices=())
    values.update(known)
    return JobFigures(**values)


@contextmanager
def serving_ui(env: Mapping[str, str]) -> Iterator[str]:
    """``flinkops ui --port 0`` in its own process, as a user starts it, with ``env`` (its FLINKOPS_HOME): the
    address it says it serves on (``http://127.0.0.1:PORT``); stopped with Ctrl-C (SIGINT) on exit, killed if it
    does not stop."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flinkops", "ui", "--port", "0"],
        env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if found is None:
            raise RuntimeError(f"flinkops ui did not say where it serves: {line!r}")
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
