"""``service.outcomes``: the answer a scheduler (an Airflow task) waits for, decided from what the controller
recorded. The existing Airflow provider calls a batch task done when its JobManager is up and fails a late check
once the cluster is gone; these are the cases it gets wrong, on the fake world."""

from __future__ import annotations

from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World
from flinkops.service.outcomes import JobOutcome, outcome


def answer(world: World, name: str, wait_until: str = "finished", generation: int = 1) -> JobOutcome | None:
    return outcome(world.resource(name), wait_until, generation, kind="FlinkDeployment", namespace="default", name=name)  # type: ignore[arg-type]


def test_a_batch_job_is_finished_only_when_flink_says_so_and_keeps_its_result_after_the_cluster_went(
    world: World,
) -> None:
    world.flink.script("batch", JobScript(finish_after=12, result={"records": "120"}))
    world.apply(application("ingest", args=["batch"], mode="stateless"))
    world.run_until(lambda w: w.job_state("ingest") == "RUNNING", what="running")
    assert world.deployment_status("ingest").job_manager_deployment_status == "READY"
    assert answer(world, "ingest") is None, "a JobManager that is up says nothing about the job's end"
    world.run_until(lambda w: w.job_state("ingest") == "FINISHED", what="FINISHED")
    if answer(world, "ingest") is None:  # the run record closes once Flink's REST cache holds the final figures
        early = outcome(world.resource("ingest"), "finished", 1, closed=False)
        assert early is not None and early.state == "finished" and early.ended_at_ms is None
    world.run_until(lambda w: answer(w, "ingest") is not None, what="an answer")
    done = answer(world, "ingest")
    assert done is not None and done.state == "finished" and done.succeeded
    assert done.accumulators == {"records": "120"} and done.duration_ms is not None and done.duration_ms >= 12_000
    assert done.job_id == world.runs("ingest")[0].job_id and done.runs == 1
    world.run_until(lambda w: w.runtime.cluster("ingest") is None, max_passes=10, what="the cluster released")
    world.run_for(3600)  # asked an hour later: the same answer, from the run history
    assert answer(world, "ingest") == done
    assert JobOutcome.from_dict(done.as_dict()) == done


def test_a_job_that_fails_after_its_jobmanager_is_ready_fails_with_flinks_root_cause(world: World) -> None:
    cause = "java.lang.ArithmeticException: / by zero"
    world.flink.script("broken", JobScript(fail_after=5, failure=cause))
    world.apply(application("ingest", args=["broken"], mode="stateless", conf={"restart-strategy.type": "none"}))
    world.run_until(lambda w: answer(w, "ingest") is not None, what="an answer")
    failed = answer(world, "ingest")
    assert failed is not None and failed.state == "failed" and not failed.succeeded
    assert failed.error is not None and cause in failed.error
    assert failed.cause == cause or cause in failed.cause


def test_waiting_for_stable_answers_once_the_streaming_job_is_judged_stable(world: World) -> None:
    world.apply(application("stream"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    world.run_until(lambda w: answer(w, "stream", "stable") is not None, what="stable")
    stable = answer(world, "stream", "stable")
    assert stable is not None and stable.state == "stable" and stable.lifecycle == "STABLE"
    assert answer(world, "stream") is None, "a streaming job has not finished"


def test_an_answer_is_for_the_generation_asked_for(world: World) -> None:
    world.flink.script("batch", JobScript(finish_after=5, result={"records": "1"}))
    world.apply(application("ingest", args=["batch"], mode="stateless"))
    world.run_until(lambda w: answer(w, "ingest") is not None, what="the first run's answer")
    assert answer(world, "ingest", generation=2) is None, "the previous generation's end is not this one's"


def test_a_deleted_resource_is_a_failure_that_says_so(world: World) -> None:
    world.apply(application("stream"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    world.delete("stream")
    world.run_until(lambda w: w.resource("stream") is None, what="gone")
    gone = answer(world, "stream")
    assert gone is not None and gone.state == "failed" and gone.error is not None and "deleted" in gone.error


def test_the_cause_of_a_java_failure_is_its_innermost_caused_by() -> None:
    error = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n"
        "\tat org.apache.flink.Foo.bar(Foo.java:1)\n"
        "Caused by: java.lang.RuntimeException: wrapper\n"
        "Caused by: java.lang.IllegalStateException: deliberate failure after 50 records\n"
        "\t... 12 more"
    )
    failed = JobOutcome("failed", "FlinkDeployment", "default", "x", error=error)
    assert failed.cause == "java.lang.IllegalStateException: deliberate failure after 50 records"
    assert JobOutcome("failed", "FlinkDeployment", "default", "x", error="plain words\nmore").cause == "plain words"


def test_a_savepoint_asked_of_the_running_job_leaves_its_end_the_answer_for_the_new_generation(world: World) -> None:
    # A savepoint is a spec change (its trigger nonce) that starts no run: a sensor reading the resource's current
    # generation still learns of the job's end; an upgrade's stop, which also ends a job FINISHED, is no answer.
    world.flink.script("batch", JobScript(finish_after=30, result={"records": "7"}))
    world.apply(application("ingest", args=["batch"], mode="savepoint"))
    world.run_until(lambda w: w.job_state("ingest") == "RUNNING", what="running")
    world.edit("ingest", job={"savepoint_trigger_nonce": 1})
    generation = world.resource("ingest").metadata.generation  # type: ignore[union-attr]
    assert generation == 2 and len(world.runs("ingest")) == 1
    world.run_until(lambda w: answer(w, "ingest", generation=2) is not None, what="the end, for generation 2")
    done = answer(world, "ingest", generation=2)
    assert done is not None and done.state == "finished" and done.accumulators == {"records": "7"}


def test_a_job_stopped_for_an_upgrade_is_not_the_new_generations_end(world: World) -> None:
    world.apply(application("stream", mode="savepoint"))
    world.run_until(lambda w: w.job_state("stream") == "RUNNING", what="running")
    world.edit("stream", job={"parallelism": 3})
    seen: list[JobOutcome | None] = []

    def upgraded(w: World) -> bool:
        seen.append(answer(w, "stream", generation=2))
        return w.lifecycle("stream") == "STABLE" and len(w.runs("stream")) == 2

    world.run_until(upgraded, what="the upgraded job stable")
    assert all(found is None for found in seen), seen  # the old job's stop-with-savepoint (FINISHED) never answered
