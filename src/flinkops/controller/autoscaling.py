"""The autoscaler in the control loop: collect a sample of the job's metrics each pass, evaluate, and have the
planner carry a new parallelism out as any scale change of the spec.

For a FlinkDeployment running an application job with ``job.autoscaler.enabled: "true"``, each pass:

1. reads the job's per-vertex figures (busy time, records in/out, back pressure, Kafka lag and partitions, key
   groups) through the figures port and keeps them as a :class:`~flinkops.core.autoscaler.Sample` (in memory,
   for one metrics window: a restarted controller starts a fresh window and says so, rather than decide on
   figures it did not see);
2. asks ``core.autoscaler.evaluate`` for a verdict and records it in ``status.autoscaler`` (the pass's status
   write carries it; the decision is written before the rescale it asks for);
3. hands the planner the spec with the autoscaler's parallelism (``job.parallelism``, and the TaskManager
   replicas when the spec fixes them): the user's resource is never modified. The planner sees a scale change
   against the deployed spec and rescales the job in place (adaptive scheduler: ``ScaleInPlace``, the resource
   requirements REST API, more TaskManagers first) or by a savepoint upgrade otherwise.

Turning the autoscaler off drops its record, and with it its parallelism: the spec's own comes back.

Called by: ``controller.loop.Controller`` (``prepare`` in a pass; ``preview`` for ``flinkops plan``, which
collects nothing).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from flinkops.api.autoscaler import AutoscalerSettings, autoscaler_enabled, autoscaler_settings
from flinkops.api.flinkconf import adaptive_scheduler, positive_int, task_slots
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec
from flinkops.core.autoscaler import JobView, Reading, Sample, evaluate
from flinkops.core.planner.types import EventNote, Observation
from flinkops.core.specs import load_spec
from flinkops.ports import Clock, ResourceKey
from flinkops.ports.flink import JobAddress, JobFigures

__all__ = ["Autoscaling", "FiguresSource", "autoscaled_spec", "sample_interval", "with_parallelism"]

#: Reads one job's live figures (None: its JobManager did not answer).
FiguresSource = Callable[[JobAddress], JobFigures | None]

_RUNNING = "RUNNING"


def sample_interval(settings: AutoscalerSettings) -> float:
    """Seconds between samples: six per metrics window, at least one a second, at most one a minute."""
    return min(60.0, max(1.0, settings.metrics_window_ms / 6000))


def with_parallelism(spec: FlinkDeploymentSpec, parallelism: int) -> FlinkDeploymentSpec:
    """``spec`` running its job at ``parallelism``, with enough TaskManagers when the spec fixes their count."""
    if spec.job is None:
        return spec
    update: dict[str, object] = {"job": spec.job.model_copy(update={"parallelism": parallelism})}
    if spec.task_manager is not None and spec.task_manager.replicas is not None:
        replicas = math.ceil(parallelism / task_slots(spec.flink_configuration))
        update["task_manager"] = spec.task_manager.model_copy(update={"replicas": replicas})
    return spec.model_copy(update=update)


def autoscaled_spec(resource: FlinkDeployment) -> FlinkDeploymentSpec:
    """``resource``'s spec with the parallelism the autoscaler set (as recorded in status), if it set one."""
    record = resource.status.autoscaler if resource.status is not None else None
    if record is None or record.parallelism is None or not autoscaler_enabled(resource.spec.flink_configuration):
        return resource.spec
    return with_parallelism(resource.spec, record.parallelism)


@dataclass
class _Collected:
    job_id: str
    since_ms: int
    samples: deque[Sample]


class Autoscaling:
    """Samples per resource and the autoscaler's step of a pass."""

    def __init__(self, figures: FiguresSource | None, clock: Clock) -> None:
        self.figures = figures
        self.clock = clock
        self._collected: dict[ResourceKey, _Collected] = {}

    def forget(self, key: ResourceKey) -> None:
        self._collected.pop(key, None)

    def prepare(
        self, resource: FlinkDeployment, obs: Observation, *, collect: bool = True
    ) -> tuple[FlinkDeployment, EventNote | None, float | None]:
        """The resource the planner should see this pass (the autoscaler's record in status, its parallelism in
        the spec), the event to emit, and how soon the next pass should come (None: no hurry)."""
        key = ResourceKey.of(resource)
        spec, status = resource.spec, resource.status
        if not autoscaler_enabled(spec.flink_configuration) or spec.job is None or resource.is_session_cluster:
            self.forget(key)
            if status is not None and status.autoscaler is not None:
                cleared = status.model_copy(update={"autoscaler": None})
                return resource.model_copy(update={"status": cleared}), None, None
            return resource, None, None
        if status is None:  # nothing deployed yet: nothing to measure, nothing to record
            return resource, None, None
        settings = autoscaler_settings(spec.flink_configuration)
        now_ms = int(self.clock.now() * 1000)
        deployed = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkDeploymentSpec)
        job = obs.job
        view = None
        if job is not None and job.state == _RUNNING and obs.rest_url and deployed is not None and deployed.job:
            address = JobAddress(obs.rest_url, job.job_id)
            samples = self._collect(key, address, now_ms, settings.metrics_window_ms, collect)
            deployed_config = deployed.flink_configuration
            view = JobView(
                job_id=job.job_id,
                parallelism=deployed.job.parallelism or positive_int(deployed_config, "parallelism.default") or 1,
                running_since_ms=job.running_since if job.all_tasks_running else None,
                collecting_since_ms=samples.since_ms,
                in_place=adaptive_scheduler(deployed_config) and adaptive_scheduler(spec.flink_configuration),
                reset_nonce=spec.job.autoscaler_reset_nonce,
            )
            window = tuple(samples.samples)
        else:
            window = ()
        interval = sample_interval(settings)
        verdict = evaluate(
            settings, status.autoscaler, window, view, now_ms, stale_after_ms=int(3000 * interval) + 10_000
        )
        record = verdict.status
        if record.parallelism is not None:
            spec = with_parallelism(spec, record.parallelism)
        updated = resource.model_copy(update={"spec": spec, "status": status.model_copy(update={"autoscaler": record})})
        event = EventNote(*verdict.event) if verdict.event is not None else None
        return updated, event, interval if view is not None else None

    def _collect(self, key: ResourceKey, address: JobAddress, now_ms: int, window_ms: int, collect: bool) -> _Collected:
        """The samples of the job at ``address``, with a new one when ``collect``; those older than a window are
        dropped (a new job id starts afresh)."""
        collected = self._collected.get(key)
        if collected is None or collected.job_id != address.job_id:
            collected = self._collected[key] = _Collected(address.job_id, now_ms, deque())
        while collected.samples and collected.samples[0].at_ms < now_ms - window_ms:
            collected.samples.popleft()
        if collect and self.figures is not None:
            figures = self.figures(address)
            if figures is not None and figures.job_id == address.job_id:
                collected.samples.append(_sample(figures, now_ms))
        return collected


def _sample(figures: JobFigures, now_ms: int) -> Sample:
    readings = []
    for v in figures.vertices:
        if v.is_source:
            rate = v.sources_out_per_second if v.sources_out_per_second is not None else v.records_out_per_second
            total = v.sources_out_total
        else:
            rate, total = v.records_in_per_second, v.records_in_total
        readings.append(
            Reading(
                vertex_id=v.vertex_id,
                name=v.name,
                parallelism=v.parallelism,
                is_source=v.is_source,
                busy=v.busy_ratio,
                backpressure=v.backpressure_ratio,
                rate=rate,
                lag=v.kafka_lag,
                partitions=v.kafka_partitions,
                max_parallelism=v.max_parallelism,
                records_total=total,
                busy_ms_total=v.busy_ms_total,
                backpressure_ms_total=v.backpressured_ms_total,
            )
        )
    return Sample(at_ms=now_ms, job_id=figures.job_id, vertices=tuple(readings))
