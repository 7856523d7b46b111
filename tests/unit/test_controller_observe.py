"""How the controller reads a job from Flink's REST API, through an httpx transport (no cluster needed)."""

from __future__ import annotations

import httpx

from flinkops.controller.observer import observe_job
from flinkops.flink.rest import FlinkRestClient

JOB = "c8ea6295bf5340a3b7401f0dd533117e"


def client(state: str, checkpoints: httpx.Response, seen: list[str], running: int = 2) -> FlinkRestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/jobs/overview":
            job = {"jid": JOB, "name": "fraud", "state": state, "start-time": 1000, "end-time": -1}
            return httpx.Response(200, json={"jobs": [job]})
        if request.url.path == f"/jobs/{JOB}/checkpoints":
            return checkpoints
        if request.url.path == f"/jobs/{JOB}":
            body = {
                "jid": JOB,
                "state": state,
                "timestamps": {"RUNNING": 2000},
                "vertices": [{"id": "v1"}, {"id": "v2"}],
                "status-counts": {"RUNNING": running, "DEPLOYING": 2 - running},
            }
            return httpx.Response(200, json=body)
        return httpx.Response(404, json={"errors": ["Not found"]})

    return FlinkRestClient("http://flink", transport=httpx.MockTransport(handler))


def test_a_starting_job_is_observed_without_asking_for_checkpoints() -> None:
    """Flink answers 500 on /checkpoints until the job has an execution graph; a normal start must not fail."""
    seen: list[str] = []
    broken = httpx.Response(500, json={"errors": ["Internal server error."]})
    for state in ("INITIALIZING", "CREATED"):
        observed = observe_job(client(state, broken, seen), JOB, now_ms=3000, tasks_running_since={})
        assert observed is not None and observed.state == state
        assert observed.completed_checkpoints == 0
    assert f"/jobs/{JOB}/checkpoints" not in seen


def test_a_running_job_reports_checkpoint_progress_and_when_it_started_running() -> None:
    stats = {
        "counts": {"completed": 3, "total": 3},
        "latest": {"completed": {"id": 3, "external_path": "file:/ck/chk-3", "latest_ack_timestamp": 5000}},
    }
    seen: dict[str, int] = {}
    rest = client("RUNNING", httpx.Response(200, json=stats), [])
    observed = observe_job(rest, JOB, now_ms=9000, tasks_running_since=seen)
    assert observed is not None
    assert (observed.completed_checkpoints, observed.latest_checkpoint_path) == (3, "file:/ck/chk-3")
    assert observed.running_since == 9000 and observed.all_tasks_running
    later = observe_job(rest, JOB, now_ms=12000, tasks_running_since=seen)
    assert later is not None and later.running_since == 9000, "timed from the first pass that saw all tasks run"


def test_the_stability_clock_restarts_when_tasks_stop_running() -> None:
    """Flink marks the job RUNNING at scheduling; tasks still deploying must not count towards stability."""
    seen = {JOB: 1000}
    observed = observe_job(
        client("RUNNING", httpx.Response(200, json={}), [], running=1), JOB, now_ms=5000, tasks_running_since=seen
    )
    assert observed is not None and observed.running_since is None and not observed.all_tasks_running
    assert JOB not in seen


def test_a_job_the_cluster_does_not_have_is_none() -> None:
    assert (
        observe_job(client("RUNNING", httpx.Response(200, json={}), []), "f" * 32, now_ms=0, tasks_running_since={})
        is None
    )
