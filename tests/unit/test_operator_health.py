"""The operator's /healthz: a stalled main loop or a canary resource the loop stopped reconciling (the reference's
``kubernetes.operator.health.canary.resource.timeout``) answers 503, so Kubernetes restarts the operator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flinkops.controller.canary import CanaryMonitor
from flinkops.ports import ResourceKey
from flinkops.wiring.metrics import MetricsServer, OperatorMetrics

#: Every family the operator exposes (dashboards and alerts name them): adding one is fine, renaming one is not.
GOLDEN = {
    "flinkops_reconcile": "counter",
    "flinkops_reconcile_errors": "counter",
    "flinkops_reconcile_duration_seconds": "histogram",
    "flinkops_resources": "gauge",
    "flinkops_leader": "gauge",
    "flinkops_canaries_unhealthy": "gauge",
    "flinkops_kube_requests": "counter",
}


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
    assert families == GOLDEN
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
