"""The operator's /healthz: a stalled main loop or a canary resource the loop stopped reconciling (the reference's
``kubernetes.operator.health.canary.resource.timeout``) answers 503, so Kubernetes restarts the operator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flinkops.controller.canary import CanaryMonitor
from flinkops.ports import ResourceKey
from flinkops.wiring.metrics import MetricsServer, OperatorMetrics


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
    assert "flinkops_canaries_unhealthy 1" in httpx.get(f"{url}/metrics").text
    monitor.reconciled(key, 1, now=91.0)
    now[0] = 92.0
    assert httpx.get(f"{url}/healthz").status_code == 200
