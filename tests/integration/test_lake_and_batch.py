"""The data-lake bronze layer (a session job whose jar is an s3:// object; its live figures and Kafka lag in the
controller's metrics) and the hourly conversions batch job (a bounded per-job cluster that goes away when its job
ends), on the real Kafka and S3 servers."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flinkops.dev.s3 import ensure_bucket
from flinkops.flink.figures import FiguresReader
from flinkops.service.target import LocalTarget
from flinkops.wiring.metrics import OperatorMetrics
from integration.flinkops_cli import Flinkops, last_run, running, status_of
from support.examples import arg, example, example_module

pytestmark = pytest.mark.integration

RECORDS = 2_000_000  # conversions generated for the batch job
HOURS, PARTNERS, SEED = 24, 50, 7
BRONZE_RECORDS = 3000


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def _lines(s3: Any, bucket: str, keys: list[str]) -> list[str]:
    lines: list[str] = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines.extend(line for line in body.splitlines() if line.strip())
    return lines


@pytest.fixture(scope="module")
def generator() -> Iterator[Any]:
    yield example_module("conversions-batch/generate.py")


def test_bronze_session_job_from_an_s3_jar_lands_every_record(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    flinkops, dp = data_plane_flinkops, data_plane
    s3 = dp.s3()
    ensure_bucket(s3, "datalake")
    dp.create_topic("inventory", 2)
    s3.upload_file(str(example_jar), "datalake", "jars/flinkops-examples.jar")
    producer = Producer({"bootstrap.servers": dp.bootstrap, "enable.idempotence": True})
    for i in range(BRONZE_RECORDS):
        producer.produce("inventory", key=f"host-{i % 37}", value=json.dumps({"id": i, "host": f"host-{i % 37}"}))
    assert producer.flush(30) == 0

    spec = example("datalake-bronze/datalake-bronze.yaml", tmp_path, bootstrap=dp.bootstrap)
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300")
    deadline = time.monotonic() + 180
    ids: list[int] = []
    while time.monotonic() < deadline:
        keys = [k for k in _objects(s3, "datalake", "bronze/inventory/") if k.rsplit("/", 1)[-1].startswith("part")]
        ids = [json.loads(line)["id"] for line in _lines(s3, "datalake", keys)]
        if len(ids) >= BRONZE_RECORDS:
            break
        time.sleep(2)
    assert sorted(ids) == list(range(BRONZE_RECORDS)), f"{len(set(ids))} distinct of {BRONZE_RECORDS}, {len(ids)} lines"
    assert all("dt=" in k and "/hour=" in k for k in keys), keys[:3]
    session_job = flinkops.get("bronze-inventory", "datalake")
    assert session_job is not None and session_job["status"]["jobStatus"]["state"] == "RUNNING"

    # A second session job whose jar 404s is an error on that job alone; the session and its job run on.
    docs = [json.loads(d) for d in spec.read_text().split("\n---\n")]
    missing = {**docs[1], "metadata": {**docs[1]["metadata"], "name": "bronze-missing-jar"}}
    missing["spec"] = {**missing["spec"], "job": {**missing["spec"]["job"], "jarURI": "s3://datalake/jars/nope.jar"}}
    bad = tmp_path / "missing-jar.yaml"
    bad.write_text(json.dumps(missing))
    flinkops.ok("apply", "-f", str(bad))
    failed = flinkops.wait_for(
        "bronze-missing-jar", lambda r: "nope.jar" in ((r or {}).get("status", {}).get("error") or ""), 120,
        "the missing jar reported", namespace="datalake",
    )  # fmt: skip
    assert failed is not None and "404" in failed["status"]["error"]
    assert "Warning" in flinkops.ok("describe", "bronze-missing-jar", "-n", "datalake")
    running_job = flinkops.get("bronze-inventory", "datalake")
    assert running_job is not None and running_job["status"]["jobStatus"]["state"] == "RUNNING"
    flinkops.ok("delete", "-f", str(bad))

    pids = flinkops.cluster_pids("datalake-session", "datalake")
    flinkops.ok("delete", "-f", str(spec))
    assert not any(running(p) for p in pids)


def test_batch_job_finishes_with_correct_totals_and_releases_its_cluster(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, generator: Any, tmp_path: Path
) -> None:
    flinkops, dp = data_plane_flinkops, data_plane
    s3 = dp.s3()
    ensure_bucket(s3, "conversions")
    started = time.monotonic()
    generator.generate(s3, "conversions", "raw/", RECORDS, HOURS, PARTNERS, SEED)
    print(f"\ngenerated and uploaded {RECORDS} conversions in {time.monotonic() - started:.1f} s")

    spec = example("conversions-batch/conversions-batch.yaml", tmp_path, jar=example_jar)
    flinkops.ok("apply", "-f", str(spec))
    flinkops.wait_for(
        "conversions-batch", lambda r: status_of(r).get("jobStatus", {}).get("state") == "RUNNING", 300,
        "the batch job to run", namespace="ads",
    )  # fmt: skip
    record = flinkops.home / "clusters" / "ads" / "conversions-batch" / "cluster.json"
    processes = json.loads(record.read_text())["processes"]
    pids = [p["pid"] for p in processes]
    assert pids
    # Each process's measured lifetime: its start from the kernel's record, its exit as seen by a fast poll.
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    born = {p["pid"]: boot + p["start_ticks"] / os.sysconf("SC_CLK_TCK") for p in processes}
    exited: dict[int, float] = {}
    cpu: dict[int, float] = {}  # each process's CPU seconds (user + system) as last read before it exited
    cpu_over_time: list[tuple[float, float]] = []  # (epoch s, the cluster's CPU seconds so far)
    ticks = os.sysconf("SC_CLK_TCK")
    while len(exited) < len(pids):
        assert time.monotonic() - started < 900, "the batch job's cluster is still running after 15 min"
        for pid in pids:
            if pid in exited:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            if not running(pid):
                exited[pid] = time.time()
        cpu_over_time.append((time.time(), sum(cpu.values())))
        time.sleep(0.01)
    gone_at = max(exited.values())
    done = flinkops.wait_for(
        "conversions-batch",
        lambda r: last_run(r).get("endState") is not None,
        30, "the run's result in status", namespace="ads",
    )  # fmt: skip
    assert done is not None and done["status"]["jobStatus"]["state"] == "FINISHED", done and done["status"]
    run = done["status"]["deploymentHistory"][-1]
    gone_after_s = gone_at - run["endedAt"] / 1000
    print(f"cluster processes gone {gone_after_s:.1f} s after the job FINISHED")
    assert gone_after_s <= 10, f"the cluster outlived its finished job by {gone_after_s:.1f} s"
    assert int(run["result"]["records"]) == RECORDS, run
    assert int(run["result"]["groups"]) == HOURS * PARTNERS, run
    assert run["jobDurationMs"] > 0
    print(f"batch run took {run['jobDurationMs'] / 1000:.1f} s in Flink")

    # flinkops cost agrees with the processes' measured lifetimes: slot-seconds (2 slots per TaskManager) and
    # the idle tail (the job's end until the last process was gone).
    cost = json.loads(flinkops.ok("cost", "conversions-batch", "-n", "ads", "-o", "json"))
    priced = cost["runs"][-1]
    tms = [p["pid"] for p in processes if p["role"] == "taskmanager"]
    measured_slot_s = sum(2 * (exited[pid] - born[pid]) for pid in tms)
    measured_tail_ms = (gone_at * 1000) - run["endedAt"]
    print(
        f"cost: {priced['slotSeconds']:.2f} slot-s (measured {measured_slot_s:.2f}), idle tail "
        f"{priced['idleTailMs']} ms (measured {measured_tail_ms:.0f}), {priced['kpuHours']:.4f} KPU-h, "
        f"{priced['cuHours']:.4f} CU-h, {priced['price']:.5f} {cost['currency']}"
    )
    assert priced["slotSeconds"] == pytest.approx(measured_slot_s, rel=0.05)
    assert priced["idleTailMs"] == pytest.approx(measured_tail_ms, rel=0.05)
    assert priced["requested"]["taskManagers"] == len(tms) and not priced["live"]
    # What the run used, from Flink's own JVM figures read when its end was seen: the processes' CPU time as Flink
    # last fetched it from them (at most every metrics.fetcher.update-interval: 2 s as flinkops sets it), so
    # between the kernel's count one interval before that reading and the count at it.
    sampled = last_run(flinkops.get("conversions-batch", namespace="ads"))["usageSampledAt"] / 1000

    def kernel_cpu_at(moment: float) -> float:
        return max((c for t, c in cpu_over_time if t <= moment), default=0.0)

    low, high = kernel_cpu_at(sampled - 2.5), kernel_cpu_at(sampled + 0.5)
    print(
        f"used: {priced['usedVcpuSeconds']:.1f} CPU-s (the kernel's count {low:.1f}-{high:.1f} s then, "
        f"{sum(cpu.values()):.1f} at exit), {priced['usedGibSeconds']:.1f} GiB-s of {priced['gibSeconds']:.1f} "
        "requested"
    )
    assert low * 0.98 <= priced["usedVcpuSeconds"] <= high * 1.02
    assert 0 < priced["usedGibSeconds"] < priced["gibSeconds"]
    print(flinkops.ok("cost", "conversions-batch", "-n", "ads"))

    expected = generator.expected_totals(RECORDS, HOURS, PARTNERS, SEED)
    output = arg(json.loads(spec.read_text())["spec"]["job"]["args"], "--output").removeprefix("s3://conversions/")
    keys = [k for k in _objects(s3, "conversions", output) if not k.rsplit("/", 1)[-1].startswith(".")]
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for line in _lines(s3, "conversions", keys):
        hour, partner, count, revenue = line.split(",")
        assert (hour, partner) not in found, f"group {hour},{partner} written twice"
        found[(hour, partner)] = (int(count), int(revenue))
    assert found == {(str(h), str(p)): v for (h, p), v in expected.items()}


def test_failed_batch_run_reports_the_cause_and_leaves_nothing_running(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, tmp_path: Path
) -> None:
    flinkops, dp = data_plane_flinkops, data_plane
    s3 = dp.s3()
    ensure_bucket(s3, "conversions")
    s3.put_object(
        Bucket="conversions",
        Key="raw-bad/hour=2026-01-01T00/part-0.csv",
        Body=b"1,p-1,2026-01-01T00,12\nnot,a,record\n",
    )
    spec = example("conversions-batch/conversions-batch.yaml", tmp_path, jar=example_jar)
    doc = json.loads(spec.read_text())
    doc["metadata"]["name"] = "conversions-bad"
    doc["spec"]["job"]["args"] = ["--input", "s3://conversions/raw-bad/", "--output", "s3://conversions/hourly-bad/"]
    doc["spec"]["flinkConfiguration"]["restart-strategy.type"] = "none"
    spec.write_text(json.dumps(doc))
    flinkops.ok("apply", "-f", str(spec))
    failed = flinkops.wait_for(
        "conversions-bad",
        lambda r: bool(r)
        and status_of(r).get("lifecycleState") == "FAILED"
        and not flinkops.cluster_pids("conversions-bad", "ads"),
        300,
        "FAILED with its cluster released",
        namespace="ads",
    )  # fmt: skip
    assert failed is not None
    assert "malformed conversion record" in failed["status"]["error"], failed["status"]["error"]
    assert failed["status"]["deploymentHistory"][-1]["endState"] == "FAILED"
    assert "ClusterReleased" in flinkops.ok("describe", "conversions-bad", "-n", "ads")
    flinkops.ok("delete", "conversions-bad", "-n", "ads")


def _series(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], family: str, /, **labels: str
) -> float | None:
    """The value of the series ``family`` whose labels include ``labels`` (None: no such series)."""
    for (sample, found), value in values.items():
        if sample == family and set(labels.items()) <= set(found):
            return value
    return None


def test_a_session_job_reading_kafka_shows_its_lag_and_records(
    data_plane_flinkops: Flinkops, data_plane: Any, example_jar: Path, tmp_path: Path
) -> None:
    """The bronze layer (a session job reading a real Kafka topic) through the collector: records/s above zero
    and the Kafka lag known (from the source's own metrics) while a producer writes; then a backlog (the job
    suspended while records pile up) shows as lag once it is resumed. (The lag's way back to 0 is not waited for:
    Kafka's ``records-lag-max`` is a maximum over its sample window, up to a minute.)"""
    from confluent_kafka import Producer

    started = time.monotonic()
    flinkops, dp = data_plane_flinkops, data_plane
    s3 = dp.s3()
    ensure_bucket(s3, "datalake")
    dp.create_topic("metrics-lag", 2)
    s3.upload_file(str(example_jar), "datalake", "jars/flinkops-examples.jar")
    docs = [json.loads(d) for d in example("datalake-bronze/datalake-bronze.yaml", tmp_path, bootstrap=dp.bootstrap)
            .read_text().split("\n---\n")]  # fmt: skip
    job = docs[1]["spec"]["job"]
    job["args"] = [a.replace("inventory", "metrics-lag") for a in job["args"]]
    spec = tmp_path / "lag.yaml"
    spec.write_text("\n---\n".join(json.dumps(d) for d in docs))
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300")
    stop = threading.Event()

    def produce() -> None:
        producer = Producer({"bootstrap.servers": dp.bootstrap})
        i = 0
        while not stop.is_set():
            for _ in range(200):
                producer.produce("metrics-lag", key=f"host-{i % 37}", value=json.dumps({"id": i}))
                i += 1
            producer.poll(0)
            stop.wait(0.1)
        producer.flush(30)

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    metrics = OperatorMetrics(store=LocalTarget(flinkops.home).store(), figures=FiguresReader())
    ident = {"namespace": "datalake", "name": "bronze-inventory"}

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render())
            for s in family.samples
        }

    lags: list[float] = []
    try:
        deadline = time.monotonic() + 120
        while True:  # records flowing in, the lag known
            values = scrape()
            lag = _series(values, "flinkops_flinksessionjob_kafka_lag_records", **ident)
            if lag is not None:
                lags.append(lag)
            if (
                lag is not None
                and (_series(values, "flinkops_flinksessionjob_records_in_per_second", **ident) or 0) > 0
            ):
                break
            assert time.monotonic() < deadline, (lags, {k: v for k, v in values.items() if "sessionjob" in k[0]})
            time.sleep(0.5)
    finally:
        stop.set()
        writer.join(60)
    # A backlog: the job suspended (stateless, it starts again from the earliest offsets) while records pile up;
    # resumed, its lag is behind, then 0 once it has caught up.
    flinkops.ok("suspend", "bronze-inventory", "-n", "datalake")
    flinkops.wait_for("bronze-inventory", lambda r: status_of(r).get("lifecycleState") == "SUSPENDED", 120,
                      "the session job suspended", namespace="datalake")  # fmt: skip
    producer = Producer({"bootstrap.servers": dp.bootstrap, "linger.ms": 20})
    for i in range(50_000):
        producer.produce("metrics-lag", key=f"host-{i % 37}", value=json.dumps({"id": i}))
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    flinkops.ok("resume", "bronze-inventory", "-n", "datalake")
    deadline = time.monotonic() + 90
    rates: list[float | None] = []
    behind: list[float] = []  # the lag after the resume: the backlog must show
    while not behind or behind[-1] <= 0:
        time.sleep(0.3)
        values = scrape()
        lag = _series(values, "flinkops_flinksessionjob_kafka_lag_records", **ident)
        if lag is not None:
            behind.append(lag)
        rates.append(_series(values, "flinkops_flinksessionjob_records_in_per_second", **ident))
        assert time.monotonic() < deadline, (behind[-20:], rates[-20:])
    lags += behind
    assert _series(values, "flinkops_flinksessionjob_flink_up", **ident) == 1
    assert _series(values, "flinkops_flinksessionjob_job_state", state="RUNNING", **ident) == 1
    assert _series(values, "flinkops_flinkdeployment_kafka_lag_records", namespace="datalake") is None  # the cluster
    print(f"\nKafka lag up to {max(lags):.0f} ({len(lags)} scrapes) in {time.monotonic() - started:.1f}s")
    flinkops.ok("delete", "-f", str(spec))
