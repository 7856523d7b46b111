"""The autoscaler on real Flink and the real Kafka broker, record by record.

``examples/fraud-scoring/fraud-scoring-autoscaled.yaml`` with short windows for the test (a 12 s metrics window,
6 s stabilization, a 25 s scale-down interval) and a cost per record (``--record-cost-us``: each ``score``
subtask handles about 400 records/s, waiting rather than computing, so two cores are enough for any
parallelism). A producer writes card authorizations at 100/s, then 4x as many, then 100/s again:

* at 100/s the job is left at parallelism 1 (the autoscaler evaluated and found nothing to do);
* at 400/s ``score`` is busy all the time and the lag grows: the job is rescaled up **in place** (the same job id,
  no restore, the cluster not redeployed), to a parallelism that spreads the 4 partitions evenly, and the lag
  drains back under one window of input;
* back at 100/s it is rescaled down **once**, no sooner than the scale-down interval after the load dropped, and
  the TaskManager it no longer needs is stopped;
* a ``read_committed`` consumer sees every authorization scored exactly once, with the per-card features an
  independent computation expects (the keyed state moved between subtasks twice).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from integration.flinkops_cli import Flinkops
from support.examples import example

pytestmark = pytest.mark.integration

NAME, NAMESPACE = "fraud-scoring-autoscaled", "payments"
LOW, HIGH = 100, 400  # authorizations per second
COST_US = 2500  # per record in `score`: ~400 records/s per subtask
CARDS = 200
EVENT_STEP_MS = 1000
WINDOW_S = 12
SCALE_DOWN_S = 25
INPUT, OUTPUT = "as-card-auth", "as-fraud-scores"


def _autoscaler(flinkops: Flinkops) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(flinkops.ok("autoscaler", NAME, "-n", NAMESPACE, "-o", "json"))
    return found


def _wait(flinkops: Flinkops, what: str, timeout: float, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = _autoscaler(flinkops)
        if check(report):
            return report
        time.sleep(1.0)
    raise AssertionError(f"{what} within {timeout:.0f} s; the autoscaler says: {json.dumps(report, indent=1)[:3000]}")


def _source_lag(report: dict[str, Any]) -> float | None:
    lags = [v.get("lag") for v in report.get("vertices", []) if v.get("lag") is not None]
    return sum(lags) if lags else None


def test_the_job_follows_its_load_in_place_and_scores_every_record_once(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, tmp_path: Path
) -> None:
    from support.fraud import ProducerThread, check_scores, read_topic

    flinkops, dp = data_plane_flinkops, data_plane
    dp.create_topic(INPUT, 4)
    dp.create_topic(OUTPUT, 4)
    config = {
        # state on this machine's disk: the S3 of the example is not what this test is about
        "execution.checkpointing.dir": (tmp_path / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (tmp_path / "savepoints").as_uri(),
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.min-pause": "500 ms",
        "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "0 s",
        "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "1 s",
        "resourcemanager.taskmanager-timeout": "5 s",
        "job.autoscaler.metrics.window": f"{WINDOW_S} s",
        "job.autoscaler.stabilization.interval": "6 s",
        "job.autoscaler.scale-down.interval": f"{SCALE_DOWN_S} s",
        "job.autoscaler.catch-up.duration": "30 s",
        "job.autoscaler.restart.time": "3 s",
        "job.autoscaler.utilization.target": "0.6",
        "job.autoscaler.utilization.max": "0.8",
    }
    args = [
        "--bootstrap-servers", dp.bootstrap, "--input-topic", INPUT, "--output-topic", OUTPUT,
        "--group-id", "autoscaled-test", "--transactional-id-prefix", "autoscaled-test",
        "--record-cost-us", str(COST_US),
    ]  # fmt: skip
    spec = example(
        "fraud-scoring/fraud-scoring-autoscaled.yaml",
        tmp_path,
        jar=example_jar,
        config={NAME: config},
        args={NAME: args},
    )
    producer = ProducerThread(dp.bootstrap, INPUT, LOW, cards=CARDS, event_step_ms=EVENT_STEP_MS)
    producer.start()
    try:
        flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300")
        job_id = flinkops.get(NAME, NAMESPACE)["status"]["jobStatus"]["jobId"]  # type: ignore[index]

        # (1) 100/s: evaluated, nothing to do.
        report = _wait(flinkops, "an evaluation at the low rate", 120, lambda r: r.get("state") == "balanced")
        assert report["currentParallelism"] == 1 and not report.get("history"), report

        # (2) 4x the rate: rescaled up in place, the lag drains.
        producer.rate = HIGH
        step = time.time()
        report = _wait(flinkops, "a scale-up", 180, lambda r: r.get("history"))
        [up] = report["history"]
        assert up["how"] == "in-place" and up["fromParallelism"] == 1 and up["toParallelism"] in (2, 4), up
        assert up["at"] / 1000 > step
        status = flinkops.get(NAME, NAMESPACE)["status"]  # type: ignore[index]
        assert status["jobStatus"]["jobId"] == job_id, "rescaled in place: the same job"
        assert len(status["deploymentHistory"]) == 1, "no redeploy, no restore"
        report = _wait(
            flinkops,
            "the lag drained under one window of input",
            180,
            lambda r: (
                r.get("currentParallelism") == up["toParallelism"]
                and (lag := _source_lag(r)) is not None
                and lag < HIGH * WINDOW_S
            ),
        )
        drained = time.time()
        print(flinkops.ok("autoscaler", NAME, "-n", NAMESPACE))
        scaled = up["at"] / 1000 - step
        print(f"\nload step to lag under one window: {drained - step:.1f} s (scale-up after {scaled:.1f} s)")

        # (3) back to 100/s: rescaled down once, after the scale-down interval.
        producer.rate = LOW
        drop = time.time()
        report = _wait(flinkops, "a scale-down", 240, lambda r: len(r.get("history", [])) >= 2)
        down = report["history"][-1]
        assert (down["fromParallelism"], down["toParallelism"], down["how"]) == (up["toParallelism"], 1, "in-place")
        assert down["at"] / 1000 >= drop + SCALE_DOWN_S, "not before the load stayed low for the whole interval"
        assert report["history"][0]["effective"] is True, report["history"][0]
        _wait(flinkops, "the rescale done", 120, lambda r: r.get("currentParallelism") == 1)
        status = flinkops.get(NAME, NAMESPACE)["status"]  # type: ignore[index]
        assert status["jobStatus"]["jobId"] == job_id and len(status["deploymentHistory"]) == 1
        flinkops.wait_for(
            NAME,
            lambda r: len(flinkops.processes(NAME, "taskmanager", NAMESPACE)) == 1,
            60,
            "the idle TaskManager stopped",
            namespace=NAMESPACE,
        )
        assert len(_autoscaler(flinkops)["history"]) == 2, "one scale-up, one scale-down: nothing more"
        print(flinkops.ok("autoscaler", NAME, "-n", NAMESPACE))
        events = flinkops.run("describe", NAME, "-n", NAMESPACE).stdout
        assert events.count("ScalingReport") >= 2 and "ScaledInPlace" in events, events
    finally:
        total = producer.stop()

    scored = read_topic(dp.bootstrap, OUTPUT, isolation="read_committed", expect=total, timeout=240)
    report_ = check_scores(scored, 0, total - 1, CARDS, EVENT_STEP_MS)
    assert not report_.missing, f"{len(report_.missing)} authorizations never scored, e.g. {report_.missing[:5]}"
    assert not report_.duplicated, f"{len(report_.duplicated)} scored twice, e.g. {report_.duplicated[:5]}"
    assert not report_.wrong, f"{len(report_.wrong)} with features that lost state, e.g. {report_.wrong[:3]}"
    flinkops.ok("delete", NAME, "-n", NAMESPACE)
