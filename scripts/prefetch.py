"""Fetch and build everything the data-plane tests and `make demo-kafka` run on, with progress, before any test
starts: the Kafka broker's jars, MinIO, the Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager), the dev node (kubelet, kube-scheduler, kube-proxy, CoreDNS, the pause image and the
Flink image with the test jobs' jar, exactly as tests/kubernetes use it), Flink's S3 plugins, the Kafka
connector, the examples' jar, the Prometheus server the observability test scrapes with, and the Airflow
environment the provider's tests run in (./.venv-airflow over a cached Airflow virtualenv: flinkops.dev.airflow).
Each is cached under ~/.cache/flinkops, so a warm machine spends a few seconds here. Fails loudly (exit 1) when
one cannot be had: a missing toolchain is an error, never a reason to skip tests.

Two lanes run side by side on a fresh machine: the Go builds (CPU-bound, they keep both cores busy) and the
downloads, Maven builds and the images (mostly waiting on the network and the disk), so the downloads cost no
wall time. The operator image (tests/integration/test_operator_image_run.py runs it) is built here too, from this
checkout: a source edit rebuilds its virtualenv layer only. Progress lines name their step."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flinkops.api.plugins import S3_HADOOP, S3_PRESTO
from flinkops.dev.airflow import AIRFLOW_VERSION, ensure_airflow
from flinkops.dev.example_jobs import build_example_jobs
from flinkops.dev.helm import helm_binary
from flinkops.dev.kafka import kafka_classpath
from flinkops.dev.kubernetes import control_plane_binaries
from flinkops.dev.node.binaries import node_binaries, require_host_tools
from flinkops.dev.node.image import flink_image, pause_image
from flinkops.dev.node.operator_image import operator_image
from flinkops.dev.s3 import minio_binary
from flinkops.errors import FlinkopsError
from flinkops.flink.distribution import find_distribution
from flinkops.flink.jars import connector_jar, plugin_jar

ROOT = Path(__file__).resolve().parents[1]
_STEP = threading.local()
_PRINT = threading.Lock()


def say(message: str) -> None:
    with _PRINT:
        print(f"  [{getattr(_STEP, 'name', 'prefetch')}] {message}", flush=True)


def kubernetes_binaries() -> str:
    binaries = control_plane_binaries(progress=say)
    return ", ".join(str(path) for path in (binaries.etcd, binaries.kube_apiserver, binaries.kube_controller_manager))


def node_parts() -> str:
    require_host_tools()
    binaries = node_binaries(progress=say)
    return f"{binaries.kubelet.parent.parent}, {binaries.coredns}"


def node_image() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.kube import node_image_jars  # the tests' own image: their jobs' jar is baked in

    built = flink_image(node_image_jars(), progress=say)
    return f"{built.archive} ({', '.join(built.names)}); pause {pause_image(progress=say).archive.name}"


def prometheus() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.prometheus import prometheus_binary

    return str(prometheus_binary(progress=say))


def run_lane(steps: list[tuple[str, Callable[[], object]]]) -> bool:
    """Run one lane's steps in order; stop at the first failure (reported) and say False."""
    for what, fetch in steps:
        _STEP.name = what
        started = time.monotonic()
        try:
            path = fetch()
        except (FlinkopsError, RuntimeError) as exc:  # RuntimeError: the test jobs did not compile
            with _PRINT:
                print(f"error: {what}: {exc}", file=sys.stderr, flush=True)
            return False
        with _PRINT:
            print(f"{what}: {path} ({time.monotonic() - started:.1f} s)", flush=True)
    return True


def main() -> int:
    version = find_distribution().version
    builds: list[tuple[str, Callable[[], object]]] = [
        ("MinIO", lambda: minio_binary(progress=say)),
        ("Kubernetes control plane", kubernetes_binaries),
        ("Kubernetes node: kubelet, kube-scheduler, kube-proxy, CoreDNS, pause", node_parts),
        ("helm (renders the operator chart in tests)", lambda: helm_binary(progress=say)),
        ("Prometheus server (tests/integration/test_observability_live.py)", prometheus),
    ]
    fetches: list[tuple[str, Callable[[], object]]] = [
        ("Kafka broker jars", lambda: kafka_classpath(progress=say)),
        ("Flink plugin s3-fs-presto", lambda: plugin_jar(S3_PRESTO, version, progress=say)),
        ("Flink plugin s3-fs-hadoop", lambda: plugin_jar(S3_HADOOP, version, progress=say)),
        ("Kafka connector", lambda: connector_jar("kafka", version, progress=say)),
        ("example jobs jar", lambda: build_example_jobs(progress=say)),
        ("Flink image for the Kubernetes node", node_image),
        ("operator image", lambda: operator_image(progress=say).archive),
        (f"Airflow {AIRFLOW_VERSION} environment (tests/airflow)", lambda: ensure_airflow(ROOT, progress=say).venv),
    ]
    with ThreadPoolExecutor(max_workers=2) as lanes:
        done = [lanes.submit(run_lane, builds), lanes.submit(run_lane, fetches)]
        return 0 if all(lane.result() for lane in done) else 1


if __name__ == "__main__":
    sys.exit(main())
