"""The operator's /healthz: a stalled main loop or a canary resource the loop stopped reconciling (the reference's
``kubernetes.operator.health.canary.resource.timeout``) answers 503, so Kubernetes restarts the operator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.specs import application, session_cluster, session_job
from fakes.store import FakeStore
from flinkops.controller.canary import CanaryMonitor
from flinkops.flink.figures import FiguresReader
from flinkops.ports import ResourceKey
from flinkops.wiring.metrics import MetricsServer, OperatorMetrics
from support.flinkrest import FakeFlink, answers_of, running

#: Every family one scrape gives (dashboards and alerts name them): adding one is fine, renaming one is not. The loop's
#: own families are always there; the rest come with resources in the store (and their running jobs).
LOOP = {
    "flinkops_reconcile": "counter",
    "flinkops_reconcile_errors": "counter",
    "flinkops_reconcile_duration_seconds": "histogram",
    "flinkops_reconcile_queue_depth": "gauge",
    "flinkops_resources": "gauge",
    "flinkops_leader": "gauge",
    "flinkops_canaries_unhealthy": "gauge",
    "flinkops_kube_requests": "counter",
    # the reference operator's Kubernetes client group, in its Prometheus reporter's form
    "flink_k8soperator_KubeClient_HttpRequest_Count": "gauge",
    "flink_k8soperator_KubeClient_HttpRequest_Failed_Count": "gauge",
    "flink_k8soperator_KubeClient_HttpResponse_Count": "gauge",
}
_NS = "flink_k8soperator_namespace"
_STATES = (
    "CREATED",
    "DEPLOYED",
    "STABLE",
    "UPGRADING",
    "SUSPENDED",
    "ROLLING_BACK",
    "ROLLED_BACK",
    "FAILED",
    "DELETING",
    "DELETED",
)
_JM = ("READY", "DEPLOYED_NOT_READY", "DEPLOYING", "MISSING", "ERROR")
REFERENCE = {
    f"{_NS}_Count": "gauge",
    **{f"{_NS}_Lifecycle_State_{state}_Count": "gauge" for state in _STATES},
    **{f"{_NS}_JmDeploymentStatus_{status}_Count": "gauge" for status in _JM},
    f"{_NS}_FlinkVersion_Count": "gauge",
    f"{_NS}_FlinkMinorVersion_Count": "gauge",
    f"{_NS}_ResourceUsage_Cpu": "gauge",
    f"{_NS}_ResourceUsage_Memory": "gauge",
    f"{_NS}_Savepoint_Count": "gauge",
    f"{_NS}_Checkpoint_Count": "gauge",
}
_PER_RESOURCE = (
    "info",
    "lifecycle_state",
    "job_state",
    "runs",
    "parallelism",
    "savepoints",
    "last_checkpoint_age_seconds",
    "last_savepoint_age_seconds",
    "flink_up",
    "records_in_per_second",
    "records_out_per_second",
    "busy_ratio",
    "backpressure_ratio",
    "restarts",
    "running_parallelism",
    "checkpoints",
)
PER_RESOURCE = {
    **{f"flinkops_flinkdeployment_{suffix}": "gauge" for suffix in (*_PER_RESOURCE, "jobmanager_deployment_status")},
    **{f"flinkops_flinksessionjob_{suffix}": "gauge" for suffix in _PER_RESOURCE},
}
#: What each resource cost (counters, ``_total`` samples): a session job's resources are its session cluster's, so
#: its own series are the times and checkpoints of its runs.
_COST = ("wall_seconds", "checkpoints")
_CLUSTER_COST = ("vcpu_seconds", "gib_seconds", "slot_seconds", "busy_slot_seconds", "kpu_hours", "cu_hours", "price")
COST = {
    **{f"flinkops_flinkdeployment_cost_{suffix}": "counter" for suffix in (*_COST, *_CLUSTER_COST)},
    **{f"flinkops_flinksessionjob_cost_{suffix}": "counter" for suffix in _COST},
}
#: Families that appear once their figures exist: Kafka lag (a job reading Kafka), per-method and per-code client
#: counts, lifecycle times (once a resource changed state).
WHEN_KNOWN = (
    "flinkops_flinkdeployment_kafka_lag_records",
    "flink_k8soperator_KubeClient_HttpRequest_<METHOD>_Count",
    "flink_k8soperator_KubeClient_HttpResponse_<code>_Count",
    "flink_k8soperator_<Kind>_Lifecycle_State_<STATE>_TimeSeconds",
    "flink_k8soperator_namespace_Lifecycle_Transition_<Transition>_TimeSeconds",
    "flinkops_<kind>_cost_idle_tail_seconds",  # a job that ended before its cluster went
    "flinkops_<kind>_cost_downtime_seconds",  # a run that followed a stop
    # recorded from Flink's metrics on the run (the used resources: application deployments only)
    "flinkops_<kind>_cost_used_vcpu_seconds",
    "flinkops_<kind>_cost_used_gib_seconds",
    "flinkops_<kind>_cost_state_gib_hours",
    "flinkops_<kind>_cost_checkpoint_bytes",
)


def scraped(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape of ``url``/metrics, parsed by prometheus_client's own parser: {(sample, labels): value}."""
    answer = httpx.get(f"{url}/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


@pytest.fixture
def served() -> Iterator[tuple[OperatorMetrics, str]]:
    metrics = OperatorMetrics()
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        yield metrics, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_a_stale_canary_makes_healthz_fail_and_names_it(served: tuple[OperatorMetrics, str]) -> None:
    metrics, url = served
    monitor = CanaryMonitor(timeout=60.0)
    now = [0.0]
    metrics.canary_problems = lambda: monitor.problems(now[0])
    key = ResourceKey("FlinkDeployment", "flink", "canary")
    monitor.reconciled(key, 1, now=0.0)
    assert httpx.get(f"{url}/healthz").status_code == 200
    now[0] = 90.0
    answer = httpx.get(f"{url}/healthz")
    assert answer.status_code == 503 and "FlinkDeployment flink/canary: not reconciled for 90s" in answer.text
    assert scraped(url)[("flinkops_canaries_unhealthy", ())] == 1
    monitor.reconciled(key, 1, now=91.0)
    now[0] = 92.0
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_one_scrape_gives_every_family_with_the_loops_figures(served: tuple[OperatorMetrics, str]) -> None:
    metrics, url = served
    metrics.leader = True
    metrics.kube_requests = lambda: {("get", 200): 7, ("patch", 409): 1}
    metrics.observe_reconcile("FlinkDeployment", "ok", 0.02)
    metrics.observe_reconcile("FlinkDeployment", "ok", 0.3)
    metrics.observe_reconcile("FlinkDeployment", "error", 4.0, error="TemporaryError")
    metrics.set_lifecycle("FlinkDeployment", "a", "STABLE")
    metrics.set_lifecycle("FlinkDeployment", "b", "STABLE")
    metrics.set_lifecycle("FlinkDeployment", "c", "UPGRADING")
    metrics.set_lifecycle("FlinkDeployment", "c", None)  # deleted
    answer = httpx.get(f"{url}/metrics").text
    families = {f.name: f.type for f in text_string_to_metric_families(answer)}
    by_client = {
        "flink_k8soperator_KubeClient_HttpRequest_GET_Count": "gauge",
        "flink_k8soperator_KubeClient_HttpRequest_PATCH_Count": "gauge",
        "flink_k8soperator_KubeClient_HttpResponse_200_Count": "gauge",
        "flink_k8soperator_KubeClient_HttpResponse_409_Count": "gauge",
    }
    assert families == {**LOOP, **by_client}
    values = scraped(url)
    fd = ("kind", "FlinkDeployment")
    assert values[("flinkops_reconcile_total", (fd, ("result", "ok")))] == 2
    assert values[("flinkops_reconcile_total", (fd, ("result", "error")))] == 1
    assert values[("flinkops_reconcile_errors_total", (("error", "TemporaryError"), fd))] == 1
    assert values[("flinkops_reconcile_duration_seconds_bucket", (fd, ("le", "0.025")))] == 1
    assert values[("flinkops_reconcile_duration_seconds_bucket", (fd, ("le", "0.5")))] == 2
    assert values[("flinkops_reconcile_duration_seconds_bucket", (fd, ("le", "+Inf")))] == 3
    assert values[("flinkops_reconcile_duration_seconds_count", (fd,))] == 3
    assert values[("flinkops_reconcile_duration_seconds_sum", (fd,))] == pytest.approx(4.32)
    assert values[("flinkops_resources", (fd, ("lifecycle_state", "STABLE")))] == 2
    assert ("flinkops_resources", (fd, ("lifecycle_state", "UPGRADING"))) not in values
    assert values[("flinkops_leader", ())] == 1
    assert values[("flinkops_kube_requests_total", (("code", "409"), ("verb", "patch")))] == 1


def test_one_scrape_of_a_fleet_gives_every_golden_family() -> None:
    """A store with a running application and a session job on a session cluster, their JobManager answering."""
    flink = FakeFlink(answers_of())
    try:
        store = FakeStore()
        store.apply(application("fraud", namespace="payments", parallelism=2))
        store.update_status(running(store.get(ResourceKey("FlinkDeployment", "payments", "fraud")), flink.url))
        store.apply(session_cluster("shared"))
        store.update_status(running(store.get(ResourceKey("FlinkDeployment", "default", "shared")), flink.url, "none"))
        store.apply(session_job("orders", "shared"))
        store.update_status(running(store.get(ResourceKey("FlinkSessionJob", "default", "orders")), None))
        metrics = OperatorMetrics(store=store, figures=FiguresReader())
        families = {f.name: f.type for f in text_string_to_metric_families(metrics.render())}
    finally:
        flink.stop()
    assert families == {**LOOP, **REFERENCE, **PER_RESOURCE, **COST}


def test_the_queue_depth_counts_resources_due_or_in_their_pass() -> None:
    from flinkops.wiring.operator import _Shard

    shard = _Shard(0, controller=None)  # type: ignore[arg-type]  # the queue does not touch the controller
    keys = [ResourceKey("FlinkDeployment", "default", name) for name in ("a", "b", "c", "later")]
    for key in keys[:3]:
        shard.mark(key, 10.0)
    shard.mark(keys[3], 99.0)
    assert shard.depth(10.0) == 3  # "later" is not due yet
    running = shard.ready(10.0)
    assert shard.depth(10.0) == 3  # in their pass: still waiting to be done
    shard.done(running[0], None)
    shard.done(running[1], 40.0)
    assert shard.depth(11.0) == 1
    metrics = OperatorMetrics()
    metrics.queue_depth = lambda: shard.depth(11.0)
    assert ("flinkops_reconcile_queue_depth 1.0") in metrics.render()
