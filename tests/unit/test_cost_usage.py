"""What a run used, from Flink's metrics: how the observer reads the cluster's JVM CPU time and memory in use and
the checkpoint statistics' sizes (through an httpx transport, with the shapes Flink 2.2 answers), and how the
planner records them on the run: at its end, and at most every ten minutes while it runs (a stable job's status
is not rewritten on every pass)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flinkops.api.models import DeploymentRecord, FlinkDeploymentStatus, JobStatus
from flinkops.controller.observer import observe_job
from flinkops.core.planner import JobObservation
from flinkops.core.planner.steady import USAGE_INTERVAL_MS, note_run_progress
from flinkops.flink.rest import FlinkRestClient

JOB = "c8ea6295bf5340a3b7401f0dd533117e"
GIB = 1 << 30
#: ``GET /jobmanager/metrics?get=...``: one component, values as strings
JM_METRICS = [
    {"id": "Status.JVM.CPU.Time", "value": "12000000000"},
    {"id": "Status.JVM.Memory.Heap.Used", "value": "100000000"},
    {"id": "Status.JVM.Memory.NonHeap.Used", "value": "50000000"},
    {"id": "Status.JVM.Memory.Direct.MemoryUsed", "value": "1000000"},
]
#: ``GET /taskmanagers/metrics?get=...&agg=sum``: aggregated over the TaskManagers, numbers
TM_METRICS = [
    {"id": "Status.JVM.CPU.Time", "sum": 30000000000.0},
    {"id": "Status.JVM.Memory.Heap.Used", "sum": 400000000.0},
    {"id": "Status.JVM.Memory.NonHeap.Used", "sum": 80000000.0},
    {"id": "Status.JVM.Memory.Direct.MemoryUsed", "sum": 20000000.0},
    {"id": "Status.Flink.Memory.Managed.Used", "sum": 0.0},
]
STATS = {
    "counts": {"completed": 15, "total": 16, "failed": 1},
    "latest": {"completed": {"id": 15, "external_path": "s3://ck/chk-15", "latest_ack_timestamp": 5000,
                             "state_size": 3000, "checkpointed_size": 500}},
    "summary": {"state_size": {"min": 1000, "max": 3000, "avg": 1980}, "checkpointed_size": {"avg": 400}},
}  # fmt: skip


def rest(answers: dict[str, Any], seen: list[httpx.Request] | None = None) -> FlinkRestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if request.url.path == "/jobs/overview":
            job = {"jid": JOB, "name": "fraud", "state": "RUNNING", "start-time": 1000, "end-time": -1,
                   "tasks": {"running": 2, "total": 2}}  # fmt: skip
            return httpx.Response(200, json={"jobs": [job]})
        if request.url.path in answers:
            answer = answers[request.url.path]
            return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)
        return httpx.Response(404, json={"errors": ["Not found"]})

    return FlinkRestClient("http://flink", transport=httpx.MockTransport(handler))


def test_the_cluster_usage_is_the_jobmanagers_plus_the_taskmanagers_sum() -> None:
    seen: list[httpx.Request] = []
    answers = {
        f"/jobs/{JOB}/checkpoints": STATS,
        "/jobmanager/metrics": JM_METRICS,
        "/taskmanagers/metrics": TM_METRICS,
    }
    observed = observe_job(rest(answers, seen), JOB, now_ms=9000, tasks_running_since={}, usage=True)
    assert observed is not None
    assert observed.cluster_cpu_seconds == pytest.approx(42.0)
    assert observed.cluster_memory_bytes == 151_000_000 + 500_000_000
    assert observed.checkpoint_state_bytes == 3000, "the newest checkpoint's state: what storage holds now"
    assert observed.checkpoint_uploaded_bytes == 400
    assert observed.observed_at == 9000
    [tms] = [r for r in seen if r.url.path == "/taskmanagers/metrics"]
    assert tms.url.params["agg"] == "sum" and "Status.JVM.CPU.Time" in tms.url.params["get"]


def test_a_session_jobs_observation_carries_no_cluster_usage() -> None:
    seen: list[httpx.Request] = []
    answers = {
        f"/jobs/{JOB}/checkpoints": STATS,
        "/jobmanager/metrics": JM_METRICS,
        "/taskmanagers/metrics": TM_METRICS,
    }
    observed = observe_job(rest(answers, seen), JOB, now_ms=9000, tasks_running_since={})
    assert observed is not None and observed.cluster_cpu_seconds is None and observed.cluster_memory_bytes is None
    assert not any("metrics" in r.url.path for r in seen), "the shared cluster is not asked"
    assert observed.checkpoint_state_bytes == 3000, "its own checkpoints are its own"


@pytest.mark.parametrize(
    ("jm", "tm", "cpu", "memory"),
    [
        ([], [], None, None),  # no metric reported yet
        ([{"id": "Status.JVM.CPU.Time", "value": "-1"}], httpx.Response(404, json={"errors": ["x"]}), None, None),
        (JM_METRICS, httpx.Response(404, json={"errors": ["no TaskManager"]}), 12.0, 151_000_000),
        ([{"id": "Status.JVM.CPU.Time", "value": "n/a"}], [{"id": "Status.JVM.CPU.Time", "sum": 2e9}], 2.0, None),
        (httpx.Response(500, json={"errors": ["boom"]}), TM_METRICS, None, None),  # the read failed: unknown
    ],
)
def test_missing_or_odd_metric_answers_are_unknown_never_zero(
    jm: Any, tm: Any, cpu: float | None, memory: int | None
) -> None:
    answers = {f"/jobs/{JOB}/checkpoints": {"counts": {"completed": 0}}, "/jobmanager/metrics": jm,
               "/taskmanagers/metrics": tm}  # fmt: skip
    observed = observe_job(rest(answers), JOB, now_ms=9000, tasks_running_since={}, usage=True)
    assert observed is not None
    assert observed.cluster_cpu_seconds == (pytest.approx(cpu) if cpu is not None else None)
    assert observed.cluster_memory_bytes == memory
    assert observed.checkpoint_state_bytes is None and observed.checkpoint_uploaded_bytes is None


# -- recording on the run ----------------------------------------------------------------------------------


def status(**run: Any) -> FlinkDeploymentStatus:
    record = DeploymentRecord(generation=1, job_id=JOB, started_at=0, deployed_at=0, running_at=10_000, **run)
    return FlinkDeploymentStatus(deployment_history=[record], job_status=JobStatus(job_id=JOB))


def seen(at: int, state: str = "RUNNING", **figures: Any) -> JobObservation:
    defaults: dict[str, Any] = {
        "cluster_cpu_seconds": at / 1000 * 1.5,  # 1.5 cores busy
        "cluster_memory_bytes": 2 * GIB,
        "checkpoint_state_bytes": GIB // 2,
        "checkpoint_uploaded_bytes": 1000,
        "completed_checkpoints": at // 60_000,
    }
    return JobObservation(JOB, state, observed_at=at, **{**defaults, **figures})


def test_a_running_runs_usage_is_written_every_ten_minutes_and_not_in_between() -> None:
    s = status()
    s = note_run_progress(s, seen(60_000))  # the first sample starts the integrals
    run = s.deployment_history[-1]
    assert (run.usage_sampled_at, run.used_gib_seconds, run.state_gib_hours) == (60_000, 0.0, 0.0)
    assert run.used_cpu_seconds == pytest.approx(90.0) and run.checkpoint_bytes == 1000
    for at in range(120_000, 60_000 + USAGE_INTERVAL_MS, 60_000):  # an ordinary pass a minute: nothing to write
        assert note_run_progress(s, seen(at)) is s
    s = note_run_progress(s, seen(60_000 + USAGE_INTERVAL_MS))
    run = s.deployment_history[-1]
    assert run.usage_sampled_at == 660_000
    assert run.used_cpu_seconds == pytest.approx(990.0), "the JVMs' own counter, exact"
    assert run.used_gib_seconds == pytest.approx(2 * 600), "2 GiB in use x 600 s"
    assert run.state_gib_hours == pytest.approx(0.5 * 600 / 3600), "0.5 GiB held x 1/6 h"
    assert run.checkpoint_bytes == 1000 * 11, "average uploaded x completed"


def test_a_first_sample_without_the_cpu_counter_is_followed_by_one_as_soon_as_it_answers() -> None:
    # Flink fills its REST metric cache on the first request: the run's first sample often has no CPU time yet.
    s = note_run_progress(status(), seen(60_000, cluster_cpu_seconds=None, cluster_memory_bytes=None))
    assert s.deployment_history[-1].usage_sampled_at == 60_000 and s.deployment_history[-1].used_cpu_seconds is None
    again = note_run_progress(s, seen(65_000))  # the next pass: the counter answers
    run = again.deployment_history[-1]
    assert run.usage_sampled_at == 65_000 and run.used_cpu_seconds == pytest.approx(97.5)  # 1.5 cores x 65 s
    assert note_run_progress(again, seen(70_000)) is again, "then every ten minutes only"


def test_the_runs_end_writes_its_figures_once() -> None:
    s = note_run_progress(status(), seen(60_000))
    ended = note_run_progress(s, seen(200_000, "FINISHED", end_time=190_000))
    run = ended.deployment_history[-1]
    assert run.usage_sampled_at == 200_000 and run.used_gib_seconds == pytest.approx(2 * 140)
    assert note_run_progress(ended, seen(210_000, "FINISHED", end_time=190_000)) is ended, "once"
    # A run being stopped for another (an upgrade) is written when the stop was asked for.
    stopping = s.model_copy(
        update={"deployment_history": [s.deployment_history[-1].model_copy(update={"stopped_for": "upgrade",
                                                                                    "stop_requested_at": 150_000})]}
    )  # fmt: skip
    stopped = note_run_progress(stopping, seen(155_000))
    assert stopped.deployment_history[-1].usage_sampled_at == 155_000
    assert note_run_progress(stopped, seen(160_000)) is stopped


def test_unknown_figures_leave_the_recorded_ones_alone() -> None:
    s = note_run_progress(status(), seen(60_000))
    nothing = {"cluster_cpu_seconds": None, "cluster_memory_bytes": None, "checkpoint_state_bytes": None,
               "checkpoint_uploaded_bytes": None}  # fmt: skip
    assert note_run_progress(s, seen(60_000 + USAGE_INTERVAL_MS, **nothing)) is s
    # A restarted TaskManager's counter starts at 0 again: the recorded CPU time does not go down.
    later = note_run_progress(s, seen(60_000 + USAGE_INTERVAL_MS, cluster_cpu_seconds=5.0, completed_checkpoints=0))
    run = later.deployment_history[-1]
    assert run.used_cpu_seconds == pytest.approx(90.0) and run.checkpoint_bytes == 1000
    # A released run is not written again.
    released = s.model_copy(
        update={"deployment_history": [s.deployment_history[-1].model_copy(update={"released_at": 61_000})]}
    )
    assert note_run_progress(released, seen(60_000 + 2 * USAGE_INTERVAL_MS)) is released


# -- the report ------------------------------------------------------------------------------------------------


def test_the_report_shows_used_beside_requested_and_the_json_carries_them() -> None:
    from flinkops.api.models import RequestedResources
    from flinkops.core.cost import DEFAULT_PRICES, deployment_cost, run_cost
    from flinkops.service.cost import as_dict

    asks = RequestedResources(
        job_managers=1, job_manager_cpu=1.0, job_manager_memory_bytes=GIB, task_managers=1, task_manager_cpu=1.0,
        task_manager_memory_bytes=GIB, task_slots=1,
    )  # fmt: skip
    record = DeploymentRecord(
        generation=1, started_at=0, deployed_at=0, running_at=1000, ended_at=99_000, end_state="FINISHED",
        released_at=100_000, requested=asks, used_cpu_seconds=50.0, used_gib_seconds=100.0, state_gib_hours=0.01,
        checkpoint_bytes=4096,
    )  # fmt: skip
    run = run_cost(record, now_ms=200_000, prices=DEFAULT_PRICES)
    assert (run.vcpu_seconds, run.gib_seconds) == (200.0, 200.0)  # 2 vCPU and 2 GiB for 100 s
    assert (run.used_vcpu_seconds, run.used_gib_seconds) == (50.0, 100.0)
    assert (run.cpu_utilisation, run.memory_utilisation) == (0.25, 0.5)
    assert (run.state_gib_hours, run.checkpoint_bytes) == (0.01, 4096)
    # A window holding half of the run gets half of its used figures, and says it is an estimate.
    half = run_cost(record, now_ms=200_000, prices=DEFAULT_PRICES, since_ms=50_000)
    assert half.used_vcpu_seconds == pytest.approx(25.0) and half.cpu_utilisation == pytest.approx(0.25)
    assert any("estimate" in note for note in half.notes)
    # Unknown stays unknown: a run without the figures has None, never 0.
    old = run_cost(record.model_copy(update={"used_cpu_seconds": None}), now_ms=200_000, prices=DEFAULT_PRICES)
    assert old.used_vcpu_seconds is None and old.cpu_utilisation is None
    cost = deployment_cost([record], namespace="ns", name="n", kind="FlinkDeployment", now_ms=200_000,
                           prices=DEFAULT_PRICES, cluster_up=False)  # fmt: skip
    body = as_dict(cost)
    expected = {"usedVcpuSeconds": 50.0, "usedGibSeconds": 100.0, "stateGibHours": 0.01, "checkpointBytes": 4096,
                "cpuUtilisation": 0.25, "memoryUtilisation": 0.5}  # fmt: skip
    assert {k: body["total"][k] for k in expected} == expected
    [shown] = body["runs"]
    assert shown["usedVcpuSeconds"] == 50.0 and shown["cpuUtilisation"] == 0.25 and shown["checkpointBytes"] == 4096
    from flinkops.cli.cost import cost_lines

    text = "\n".join(cost_lines(cost))
    assert "used: 50.0 vCPU-s (25%), 100.0 GiB-s (50%), state 0.0100 GiB-h, checkpoints wrote 4.0 KiB" in text
    assert max(len(line) for line in cost_lines(cost)) <= 120
