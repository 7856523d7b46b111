"""What one scrape says about each resource and its running job: the kube-state-metrics-style series, the reference
operator's names, and the live figures read from a Flink REST API (here a fake one on 127.0.0.1 answering with the
shapes a real Flink 2.2 JobManager gave). A JobManager that does not answer leaves its figures out (``flink_up`` 0),
never 0 or NaN."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.specs import application, session_cluster, session_job
from fakes.store import FakeStore
from flinkops.api.models import FlinkSessionJob
from flinkops.flink.figures import FiguresReader
from flinkops.ports import ResourceKey
from flinkops.ports.flink import JobAddress
from flinkops.wiring.metrics import OperatorIdentity, OperatorMetrics
from support.flinkrest import JOB, SHAPES, SINK, SOURCE, FakeFlink, answers_of, running


@pytest.fixture
def flink() -> Iterator[FakeFlink]:
    fake = FakeFlink(answers_of())
    try:
        yield fake
    finally:
        fake.stop()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: OperatorMetrics) -> tuple[dict[str, str], Samples]:
    """One scrape through prometheus_client's parser: {family: type} and {(sample, labels): value}."""
    text = metrics.render()
    families = list(text_string_to_metric_families(text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}
    return {f.name: f.type for f in families}, samples


def series(samples: Samples, family: str, /, **labels: str) -> float | None:
    for (name, found), value in samples.items():
        if name == family and set(labels.items()) <= set(found):
            return value
    return None


def metrics_for(store: FakeStore, reader: FiguresReader | None = None) -> OperatorMetrics:
    return OperatorMetrics(store=store, figures=reader or FiguresReader(timeout=0.5, deadline=2.0), identity=IDENTITY)


IDENTITY = OperatorIdentity(namespace="flinkops", name="flinkops", host="test-host")
PAYMENTS = {"namespace": "payments", "name": "fraud"}


def test_a_running_deployment_gets_its_state_sets_ages_and_live_figures(flink: FakeFlink) -> None:
    store = FakeStore()
    store.apply(application("fraud", namespace="payments", parallelism=2))
    store.update_status(running(store.get(ResourceKey("FlinkDeployment", "payments", "fraud")), flink.url))
    _, samples = scrape(metrics_for(store))
    fd = "flinkops_flinkdeployment"
    assert series(samples, f"{fd}_info", **PAYMENTS, type="application", upgrade_mode="last-state") == 1
    assert series(samples, f"{fd}_lifecycle_state", **PAYMENTS, state="STABLE") == 1
    assert series(samples, f"{fd}_lifecycle_state", **PAYMENTS, state="UPGRADING") == 0
    assert series(samples, f"{fd}_job_state", **PAYMENTS, state="RUNNING") == 1
    assert series(samples, f"{fd}_job_state", **PAYMENTS, state="FAILED") == 0
    assert series(samples, f"{fd}_jobmanager_deployment_status", **PAYMENTS, status="READY") == 1
    assert series(samples, f"{fd}_runs", **PAYMENTS, reason="upgrade") == 1
    assert series(samples, f"{fd}_parallelism", **PAYMENTS) == 2
    assert series(samples, f"{fd}_savepoints", **PAYMENTS) == 1
    assert 3590 < (series(samples, f"{fd}_last_savepoint_age_seconds", **PAYMENTS) or 0) < 3700
    # The live figures, as the recorded Flink answers say.
    [source, sink] = [{a["id"]: a for a in SHAPES[f"agg_{v}"]} for v in (SOURCE, SINK)]
    assert series(samples, f"{fd}_flink_up", **PAYMENTS) == 1
    assert series(samples, f"{fd}_records_in_per_second", **PAYMENTS) == pytest.approx(
        source["numRecordsOutPerSecond"]["sum"]
    )
    assert series(samples, f"{fd}_records_out_per_second", **PAYMENTS) == pytest.approx(
        sink["numRecordsInPerSecond"]["sum"]
    )
    busiest = max(source["busyTimeMsPerSecond"]["max"], sink["busyTimeMsPerSecond"]["max"]) / 1000
    assert series(samples, f"{fd}_busy_ratio", **PAYMENTS) == pytest.approx(busiest)
    assert series(samples, f"{fd}_backpressure_ratio", **PAYMENTS) is not None
    assert series(samples, f"{fd}_restarts", **PAYMENTS) == 0
    assert (
        series(samples, f"{fd}_checkpoints", **PAYMENTS, result="completed")
        == (SHAPES["checkpoints"]["counts"]["completed"])
    )
    assert series(samples, f"{fd}_kafka_lag_records", **PAYMENTS) is None  # it reads no Kafka
    # The newer of the recorded checkpoint (12 s ago) and the one Flink reports.
    flink_ack = SHAPES["checkpoints"]["latest"]["completed"]["latest_ack_timestamp"] / 1000
    expected = time.time() - max(flink_ack, time.time() - 12)
    assert series(samples, f"{fd}_last_checkpoint_age_seconds", **PAYMENTS) == pytest.approx(expected, abs=2)


def test_a_job_reading_kafka_reports_its_lag() -> None:
    fake = FakeFlink(answers_of(kafka=True))
    try:
        store = FakeStore()
        store.apply(application("fraud", namespace="payments"))
        store.update_status(running(store.get(ResourceKey("FlinkDeployment", "payments", "fraud")), fake.url))
        _, samples = scrape(metrics_for(store))
    finally:
        fake.stop()
    assert series(samples, "flinkops_flinkdeployment_kafka_lag_records", **PAYMENTS) == 1200  # pendingRecords, summed


def test_the_autoscaler_reads_partitions_key_groups_and_counters() -> None:
    """What the autoscaler needs beyond the per-second figures: the Kafka partitions the source's readers report
    (one per ``...topic.<t>.partition.<n>.`` metric, however many metrics each has), the vertices' key groups
    (``maxParallelism``) and the counters it takes rates from."""
    fake = FakeFlink(answers_of(kafka=True))
    try:
        read = FiguresReader(timeout=0.5, deadline=2.0).read([JobAddress(fake.url, JOB)])
    finally:
        fake.stop()
    figures = read[JobAddress(fake.url, JOB)]
    assert figures is not None
    source, sink = figures.vertices
    assert (source.kafka_partitions, sink.kafka_partitions) == (4, None)
    assert source.max_parallelism == sink.max_parallelism == 128
    assert source.sources_out_total == 61_000.0 and sink.records_in_total == 60_000.0
    assert source.busy_ms_total == 50_000.0 and source.backpressured_ms_total == 0.0


def test_a_jobmanager_that_does_not_answer_leaves_the_live_figures_out() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)  # accepts, never answers
    store = FakeStore()
    for name, url in (("refused", dead), ("silent", f"http://127.0.0.1:{hanging.getsockname()[1]}")):
        store.apply(application(name))
        store.update_status(running(store.get(ResourceKey("FlinkDeployment", "default", name)), url))
    try:
        started = time.monotonic()
        _, samples = scrape(metrics_for(store, FiguresReader(timeout=0.3, deadline=1.0)))
        took = time.monotonic() - started
    finally:
        hanging.close()
    assert took < 5, "a silent JobManager held the scrape"
    for name in ("refused", "silent"):
        ident = {"namespace": "default", "name": name}
        assert series(samples, "flinkops_flinkdeployment_flink_up", **ident) == 0
        assert series(samples, "flinkops_flinkdeployment_lifecycle_state", **ident, state="STABLE") == 1
        for figure in ("records_in_per_second", "records_out_per_second", "busy_ratio", "restarts"):
            assert series(samples, f"flinkops_flinkdeployment_{figure}", **ident) is None, figure
        # the recorded checkpoint is still a fact: its age is shown
        assert series(samples, "flinkops_flinkdeployment_last_checkpoint_age_seconds", **ident) is not None
    assert all(value == value for value in samples.values()), "a NaN was written"


def test_a_suspended_deployment_asks_flink_nothing(flink: FakeFlink) -> None:
    store = FakeStore()
    store.apply(application("paused", state="suspended"))
    resource = running(store.get(ResourceKey("FlinkDeployment", "default", "paused")), flink.url)
    store.update_status(resource)
    _, samples = scrape(metrics_for(store))
    assert flink.requests == 0
    assert series(samples, "flinkops_flinkdeployment_flink_up", namespace="default", name="paused") is None


def test_a_session_job_is_read_on_its_session_clusters_jobmanager(flink: FakeFlink) -> None:
    store = FakeStore()
    store.apply(session_cluster("shared"))
    store.update_status(
        running(store.get(ResourceKey("FlinkDeployment", "default", "shared")), flink.url, job_id="none")
    )
    store.apply(session_job("orders", "shared"))
    store.update_status(running(store.get(ResourceKey("FlinkSessionJob", "default", "orders")), None))
    _, samples = scrape(metrics_for(store))
    ident = {"namespace": "default", "name": "orders"}
    assert series(samples, "flinkops_flinksessionjob_info", **ident, session_deployment="shared") == 1
    assert series(samples, "flinkops_flinksessionjob_flink_up", **ident) == 1
    assert (series(samples, "flinkops_flinksessionjob_records_in_per_second", **ident) or 0) > 0


def test_the_reader_asks_concurrently_and_reuses_its_answers() -> None:
    jobs = [f"{i:032x}" for i in range(20)]
    answers: dict[str, Any] = {}
    for job in jobs:
        answers.update(answers_of(job))
    fake = FakeFlink(answers, delay=0.05)
    try:
        reader = FiguresReader(timeout=2.0, deadline=10.0, ttl=60.0)
        read = reader.read(JobAddress(fake.url, job) for job in jobs)
        assert all(figures is not None and figures.state == "RUNNING" for figures in read.values())
        assert fake.most_in_flight > 4, "the jobs were read one after another"
        asked = fake.requests
        again = reader.read(JobAddress(fake.url, job) for job in jobs)
        assert fake.requests == asked, "a second read within the ttl asked Flink again"
        assert again == read
    finally:
        fake.stop()


def test_reference_names_count_resources_per_namespace_and_state(flink: FakeFlink) -> None:
    store = FakeStore()
    for name in ("a", "b"):
        store.apply(application(name, namespace="payments"))
        store.update_status(running(store.get(ResourceKey("FlinkDeployment", "payments", name)), flink.url))
    store.apply(application("new", namespace="payments"))
    _, samples = scrape(metrics_for(store))
    scope = {"resourcens": "payments", "resourcetype": "FlinkDeployment", "host": "test-host", "name": "flinkops"}
    prefix = "flink_k8soperator_namespace"
    assert series(samples, f"{prefix}_Count", **scope) == 3
    assert series(samples, f"{prefix}_Lifecycle_State_STABLE_Count", **scope) == 2
    assert series(samples, f"{prefix}_Lifecycle_State_CREATED_Count", **scope) == 1
    assert series(samples, f"{prefix}_Lifecycle_State_FAILED_Count", **scope) == 0
    assert series(samples, f"{prefix}_JmDeploymentStatus_READY_Count", **scope) == 2
    assert series(samples, f"{prefix}_JmDeploymentStatus_MISSING_Count", **scope) == 1
    assert series(samples, f"{prefix}_FlinkVersion_Count", **scope, FlinkVersion="2.2.0") == 2
    assert series(samples, f"{prefix}_FlinkMinorVersion_Count", **scope, FlinkMinorVersion="2.2") == 2
    snapshots = {"resourcens": "payments", "resourcetype": "FlinkStateSnapshot"}
    assert series(samples, f"{prefix}_Savepoint_Count", **snapshots) == 2


def test_lifecycle_transitions_are_timed_as_the_reference_does() -> None:
    now = [1000.0]
    metrics = OperatorMetrics(identity=IDENTITY, clock=lambda: now[0])
    for at, state in ((0, "CREATED"), (5, "DEPLOYED"), (35, "STABLE"), (100, "UPGRADING"), (110, "DEPLOYED"),
                      (130, "STABLE"), (200, "SUSPENDED"), (260, "STABLE")):  # fmt: skip
        now[0] = 1000.0 + at
        metrics.set_lifecycle("FlinkDeployment", "payments/fraud", state)
    _, samples = scrape(metrics)
    system = "flink_k8soperator_FlinkDeployment_Lifecycle_Transition"
    spaced = {"resourcens": "payments", "resourcetype": "FlinkDeployment"}
    # DEPLOYED -> STABLE from the first time seen DEPLOYED: 35 - 5 = 30, then 130 - 110 = 20
    assert series(samples, f"{system}_Stabilization_TimeSeconds_count") == 2
    assert series(samples, f"{system}_Stabilization_TimeSeconds_sum") == 50
    assert (
        series(samples, "flink_k8soperator_namespace_Lifecycle_Transition_Stabilization_TimeSeconds_count", **spaced)
        == 2
    )
    # STABLE -> ... -> STABLE from the last pass that saw it STABLE: 130 - 35
    assert series(samples, f"{system}_Upgrade_TimeSeconds_sum") == 95
    assert series(samples, f"{system}_Submission_TimeSeconds_sum") == 10  # UPGRADING -> DEPLOYED
    assert series(samples, f"{system}_Suspend_TimeSeconds_count") == 2  # STABLE -> UPGRADING, STABLE -> SUSPENDED
    assert series(samples, f"{system}_Resume_TimeSeconds_sum") == 60  # SUSPENDED -> STABLE
    assert series(samples, f"{system}_Resume_TimeSeconds", quantile="0.5") == 60


def test_a_kafka_source_whose_metrics_show_up_late_gets_its_lag() -> None:
    """Right after a start Flink lists a source vertex's task metrics before its Kafka reader's: the reader must
    look again rather than take the vertex for one that reads no Kafka (found on a real Kafka job)."""
    fake = FakeFlink(answers_of())  # the source lists no Kafka metric yet
    try:
        reader = FiguresReader(ttl=0.0, relist=0.0)
        job = JobAddress(fake.url, JOB)
        assert reader.read([job])[job] is not None
        assert reader.read([job])[job].kafka_lag is None  # type: ignore[union-attr]
        fake.answers = answers_of(kafka=True)
        read = reader.read([job])[job]
        assert read is not None and read.kafka_lag == 1200
    finally:
        fake.stop()


def _with_runs(resource: Any, now_ms: int, rest_url: str | None) -> Any:
    """``resource`` running (``running``) with two recorded runs: one finished whose cluster was released a minute
    after its job ended, and the live one, deployed an hour ago after 20 s of downtime."""
    hour = 3_600_000
    requested = {
        "jobManagers": 1,
        "jobManagerCpu": 1.0,
        "jobManagerMemoryBytes": 1 << 30,
        "taskManagers": 2,
        "taskManagerCpu": 2.0,
        "taskManagerMemoryBytes": 4 << 30,
        "taskSlots": 2,
    }
    first = now_ms - 3 * hour
    history = [
        {"generation": 1, "reason": "first-deploy", "startedAt": first, "deployedAt": first + 1000,
         "runningAt": first + 9000, "endedAt": first + hour, "endState": "FINISHED",
         "releasedAt": first + hour + 60_000, "requested": requested, "checkpoints": 40, "checkpointed": True,
         "usedCpuSeconds": 1800.0, "usedGibSeconds": 9000.0, "stateGibHours": 0.5, "checkpointBytes": 12345},
        {"generation": 2, "reason": "upgrade", "startedAt": now_ms - hour, "deployedAt": now_ms - hour + 500,
         "stoppedAt": now_ms - hour - 20_000, "runningAt": now_ms - hour, "requested": requested, "checkpointed": True},
    ]  # fmt: skip
    if isinstance(resource, FlinkSessionJob):  # a session job's runs record neither resources nor cluster usage
        for run in history:
            for shared in ("requested", "usedCpuSeconds", "usedGibSeconds"):
                run.pop(shared, None)
    shown = running(resource, rest_url).model_dump(by_alias=True, mode="json")
    shown["status"]["deploymentHistory"] = history
    return type(resource).model_validate(shown)


def test_cost_series_are_the_cost_reports_totals_with_the_live_readings(flink: FakeFlink) -> None:
    """The cost counters of a deployment with a finished run and a live one are ``cost_of``'s totals, given the busy
    ratio and checkpoint count the scrape read from Flink; a session job gets the figures of its own runs (wall
    time, downtime, checkpoints), never the cluster's resources a second time."""
    from flinkops.core.cost import DEFAULT_PRICES, Prices
    from flinkops.service.cost import cost_of

    now = time.time()
    now_ms = int(now * 1000)
    store = FakeStore()
    store.apply(application("fraud", namespace="payments", parallelism=4))
    store.update_status(_with_runs(store.get(ResourceKey("FlinkDeployment", "payments", "fraud")), now_ms, flink.url))
    store.apply(session_cluster("shared"))
    store.update_status(running(store.get(ResourceKey("FlinkDeployment", "default", "shared")), flink.url, "none"))
    store.apply(session_job("orders", "shared"))
    store.update_status(_with_runs(store.get(ResourceKey("FlinkSessionJob", "default", "orders")), now_ms, None))
    prices = Prices(currency="EUR", vcpu_hour=0.04, gib_hour=0.005, kpu_hour=0.1, cu_hour=0.2)
    metrics = OperatorMetrics(
        store=store, figures=FiguresReader(timeout=0.5, deadline=2.0), identity=IDENTITY, clock=lambda: now,
        prices=prices,
    )  # fmt: skip
    types, samples = scrape(metrics)
    figures = FiguresReader().read([JobAddress(flink.url, JOB)])[JobAddress(flink.url, JOB)]
    assert figures is not None and figures.busy_ratio is not None and figures.checkpoints_completed is not None
    fraud = store.get(ResourceKey("FlinkDeployment", "payments", "fraud"))
    assert fraud is not None
    expected = cost_of(fraud, now_ms, prices, busy_ratio=figures.busy_ratio, checkpoints=figures.checkpoints_completed)
    assert [r.live for r in expected.runs] == [False, True]
    fd = "flinkops_flinkdeployment_cost"
    assert types[f"{fd}_wall_seconds"] == "counter"
    assert series(samples, f"{fd}_wall_seconds_total", **PAYMENTS) == pytest.approx(expected.wall_ms / 1000)
    for figure in ("vcpu_seconds", "gib_seconds", "slot_seconds", "busy_slot_seconds", "kpu_hours", "cu_hours",
                   "checkpoints", "used_vcpu_seconds", "used_gib_seconds", "state_gib_hours",
                   "checkpoint_bytes"):  # fmt: skip
        assert series(samples, f"{fd}_{figure}_total", **PAYMENTS) == pytest.approx(expected.total(figure)), figure
    assert series(samples, f"{fd}_checkpoints_total", **PAYMENTS) == 40 + figures.checkpoints_completed
    assert series(samples, f"{fd}_used_vcpu_seconds_total", **PAYMENTS) == 1800, "the finished run's record"
    assert series(samples, f"{fd}_idle_tail_seconds_total", **PAYMENTS) == 60
    assert series(samples, f"{fd}_downtime_seconds_total", **PAYMENTS) == 20
    for figure, basis in (("price", "compute"), ("aws_price", "aws_managed_flink"), ("ververica_price", "ververica")):
        value = series(samples, f"{fd}_price_total", **PAYMENTS, currency="EUR", basis=basis)
        assert value == pytest.approx(expected.total(figure)), basis
    # The session job: its own runs' times and checkpoints; the resources are its session cluster's.
    orders = {"namespace": "default", "name": "orders"}
    sj = "flinkops_flinksessionjob_cost"
    assert series(samples, f"{sj}_wall_seconds_total", **orders) == pytest.approx(expected.wall_ms / 1000)
    assert series(samples, f"{sj}_downtime_seconds_total", **orders) == 20
    for name in ("vcpu_seconds", "gib_seconds", "slot_seconds", "kpu_hours", "price", "used_vcpu_seconds"):
        assert series(samples, f"{sj}_{name}_total", **orders) is None, name
    assert series(samples, f"{sj}_state_gib_hours_total", **orders) == 0.5, "its own job's state"
    # A second scrape reuses the finished run's figures and counts the live one on.
    later = now + 60
    metrics.clock = lambda: later
    _, again = scrape(metrics)
    assert series(again, f"{fd}_wall_seconds_total", **PAYMENTS) == pytest.approx(expected.wall_ms / 1000 + 60)
    # Without a rate, no price series on that basis (never a 0); the built-in table has no Ververica rate.
    _, built_in = scrape(metrics_for(store))
    assert DEFAULT_PRICES.cu_hour is None
    assert series(built_in, f"{fd}_price_total", **PAYMENTS, basis="ververica") is None
    assert series(built_in, f"{fd}_price_total", **PAYMENTS, currency="USD", basis="compute") is not None
    # A deleted resource's series go with it.
    store.remove(ResourceKey("FlinkDeployment", "payments", "fraud"))
    _, after = scrape(metrics)
    assert series(after, f"{fd}_wall_seconds_total", **PAYMENTS) is None
