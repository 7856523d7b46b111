"""The autoscaler in the control loop, on the fakes and a virtual clock: a job whose load grows is rescaled in
place (same job, no restore) once, a job whose load drops is rescaled down once after the scale-down interval,
without the adaptive scheduler the rescale is a savepoint upgrade, the decision is recorded in status and as an
event before it is carried out, and turning the autoscaler off gives the spec's parallelism back.

The figures stand in for Flink's: a Kafka source of 4 partitions and a keyed ``score`` vertex that processes 100
records/s per subtask; the load (records/s arriving) is a function of virtual time, and the lag grows by what
the job's parallelism could not take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from behaviour.steps import deploy, running_stable
from fakes.specs import application
from fakes.world import World
from flinkops.ports.flink import JobAddress, JobFigures, VertexFigures

AUTOSCALED = {
    "job.autoscaler.enabled": "true",
    "job.autoscaler.metrics.window": "60 s",
    "job.autoscaler.stabilization.interval": "30 s",
    "job.autoscaler.scale-down.interval": "120 s",
    "job.autoscaler.catch-up.duration": "2 min",
    "job.autoscaler.restart.time": "10 s",
    "jobmanager.scheduler": "adaptive",
}


@dataclass
class Load:
    """The model job's figures at the world's virtual time."""

    world: World
    name: str
    rate: Callable[[float], float]
    capacity: float = 100.0
    lag: float = 0.0
    last: float | None = None

    def __call__(self, address: JobAddress) -> JobFigures | None:
        job = self.world.flink.job(address.job_id)
        now = self.world.clock.now()
        p = job.parallelism
        offered = self.rate(now)
        can = self.capacity * p
        if self.last is not None:
            self.lag = max(0.0, self.lag + (offered - can) * (now - self.last))
        self.last = now
        done = min(can, offered + (self.lag > 0) * can)
        busy = min(1.0, done / can)
        source = VertexFigures(
            "src", "Source: card-auth", p, True, False, None, done, busy / 5, 0.0, self.lag,
            sources_out_per_second=done, max_parallelism=128, kafka_partitions=4,
        )  # fmt: skip
        score = VertexFigures("score", "score", p, False, True, done, done, busy, 0.0, None, max_parallelism=128)
        return JobFigures(
            address.job_id, "RUNNING", now, (source, score), done, done, busy, 0.0, self.lag, 0, p, 1, 0, now
        )


def _autoscaled(world: World, rate: Callable[[float], float], conf: dict[str, str], parallelism: int) -> Load:
    deploy(world, application("app", conf=conf, parallelism=parallelism))
    load = Load(world, "app", rate)
    world.figures = load
    return load


def test_a_load_step_scales_the_job_up_in_place_once(world: World) -> None:
    start = world.clock.now()
    _autoscaled(world, lambda t: 50.0 if t < start + 200 else 200.0, AUTOSCALED, 1)
    [job] = world.runs("app")
    world.run_for(150)
    record = world.deployment_status("app").autoscaler
    assert record is not None and record.state == "balanced", record
    assert job.parallelism == 1

    world.run_for(200)
    assert world.runs("app") == [job] and job.alive, "the same job, never redeployed"
    assert job.parallelism == 4, "200 records/s at 100 per subtask, 0.7 target, 4 partitions"
    status = world.deployment_status("app")
    assert status.job_status.job_id == job.job_id
    record = status.autoscaler
    assert record is not None and [(h.from_parallelism, h.to_parallelism, h.how) for h in record.history] == [
        (1, 4, "in-place")
    ]
    reasons = world.reasons("app")
    assert reasons.count("ScalingReport") == 1 and "ScaledInPlace" in reasons
    # the user's spec is untouched; the deployed one carries the autoscaler's parallelism
    assert world.deployment("app").spec.job is not None and world.deployment("app").spec.job.parallelism == 1

    world.run_for(400)
    record = world.deployment_status("app").autoscaler
    assert record is not None and len(record.history) == 1 and record.history[0].effective is True
    assert record.vertices and {v.name for v in record.vertices} == {"Source: card-auth", "score"}


def test_a_sustained_drop_scales_down_once_after_the_interval(world: World) -> None:
    start = world.clock.now()
    _autoscaled(world, lambda t: 300.0 if t < start + 150 else 120.0, AUTOSCALED, 4)
    [job] = world.runs("app")
    world.run_for(250)
    record = world.deployment_status("app").autoscaler
    assert job.parallelism == 4 and record is not None and record.state == "holding", record
    assert "scale-down interval" in record.reason
    world.run_for(400)
    record = world.deployment_status("app").autoscaler
    assert record is not None and [(h.from_parallelism, h.to_parallelism) for h in record.history] == [(4, 2)]
    assert record.history[0].at >= (start + 150 + 120) * 1000
    assert job.parallelism == 2 and world.runs("app") == [job]


def test_without_the_adaptive_scheduler_the_rescale_is_a_savepoint_upgrade(world: World) -> None:
    start = world.clock.now()
    conf = {**AUTOSCALED, "jobmanager.scheduler": None}
    _autoscaled(world, lambda t: 200.0 if t > start + 10 else 50.0, conf, 1)  # type: ignore[arg-type]
    world.run_until(lambda w: len(w.runs("app")) == 2 and running_stable("app")(w), what="a second run")
    old, new = world.runs("app")
    assert new.parallelism == 4 and not old.alive and new.restored_from is not None
    record = world.deployment_status("app").autoscaler
    assert record is not None and record.history[-1].how == "savepoint-upgrade"


def test_turning_the_autoscaler_off_gives_the_spec_parallelism_back(world: World) -> None:
    start = world.clock.now()
    _autoscaled(world, lambda t: 200.0 if t > start + 10 else 50.0, AUTOSCALED, 1)
    [job] = world.runs("app")
    world.run_until(lambda w: job.parallelism == 4, what="scaled up")
    world.edit("app", conf={"job.autoscaler.enabled": "false"})
    world.run_until(lambda w: job.parallelism == 1, what="back to the spec's parallelism")
    assert world.deployment_status("app").autoscaler is None
    assert world.runs("app") == [job]


def test_without_figures_it_holds_and_says_why(world: World) -> None:
    deploy(world, application("app", conf=AUTOSCALED, parallelism=2))
    world.run_for(300)
    record = world.deployment_status("app").autoscaler
    assert record is not None and record.state == "holding" and "no fresh metrics" in record.reason
    assert record.parallelism is None and world.runs("app")[0].parallelism == 2


def test_a_scale_down_stops_the_taskmanagers_the_job_no_longer_needs(world: World) -> None:
    world.runtime.elastic_sessions = True  # as the local runtime: it starts and stops TaskManagers one by one
    start = world.clock.now()
    _autoscaled(world, lambda t: 300.0 if t < start + 150 else 120.0, AUTOSCALED, 4)
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None and len(cluster.alive("taskmanager")) == 4
    world.run_until(lambda w: job.parallelism == 2, what="scaled down", max_passes=2000)
    world.run_for(60)  # Flink's resourcemanager.taskmanager-timeout (30 s) of idleness, then they go
    assert len(cluster.alive("taskmanager")) == 2 and job.alive and world.runs("app") == [job]
    assert "TaskManagersReleased" in world.reasons("app")
