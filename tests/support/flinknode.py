"""What the tests of Flink on the real dev node share: S3 that pods reach, verifier deployments, REST and timing.

* :class:`BridgeS3`: a MinIO server (``flinkops dev`` S3, on a free 127.0.0.1 port) relayed onto the node's
  bridge address by ``socat`` (as the node relays the apiserver), so pods and the operator on the host reach it
  at the same endpoint, ``http://<bridge IP>:<port>``. Started and stopped by pid; the relay binds the bridge
  address only, which the node's fence keeps on this machine.
* :func:`verifier_deployment`: a FlinkDeployment running the verifier job (``support.verifier``) from the jar
  the node's image carries, with checkpoints and savepoints on ``s3://``, S3 keys from a Secret
  (``kubernetes.env.secretKeyRef``), its output and trace on a hostPath volume that the test reads on the host
  (one node), pods small (0.25 CPU requested).
* :class:`FlinkRest`: the JobManager's REST API through its Service's ClusterIP (kube-proxy answers it on the
  host).
* :func:`trace_edges`: last record processed before a moment and first after it, from the verifier's trace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flinkops.dev.node.config import BRIDGE_IP
from flinkops.dev.process import free_port
from flinkops.dev.services import DevServices
from flinkops.flink.distribution import find_distribution
from support.kube import TESTJOBS_IN_IMAGE
from support.verifier import ENTRY_CLASS, job_args, trace_files

__all__ = [
    "OUTPUT_MOUNT",
    "S3_SECRET",
    "BridgeS3",
    "FlinkRest",
    "bridge_s3",
    "host_output_dir",
    "trace_edges",
    "verifier_deployment",
]

S3_SECRET = "s3-credentials"  # the Secret (keys "access", "secret") the pods read their S3 keys from
OUTPUT_MOUNT = "/out"  # where the hostPath output directory is mounted in the Flink pods


@dataclass(frozen=True)
class BridgeS3:
    endpoint: str  # as pods and the operator reach it: http://<bridge IP>:<port>
    access_key: str
    secret_key: str
    services: DevServices

    def create_bucket(self, name: str) -> None:
        self.services.create_bucket(name)

    def objects(self, bucket: str, prefix: str) -> list[str]:
        from flinkops.dev.s3 import s3_client

        client = s3_client(self.endpoint, self.access_key, self.secret_key)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextlib.contextmanager
def bridge_s3(home: Path, *, relay_to_bridge: bool = True) -> Iterator[BridgeS3]:
    """MinIO on a free loopback port with ``home`` as its flinkops home, relayed onto the bridge address; with
    ``relay_to_bridge=False`` (no node, so no bridge: a control plane alone, where pods never run) its endpoint is
    the loopback port itself."""
    services = DevServices(home)
    port = free_port()
    services.up(["s3"], {"s3": port})
    relay: subprocess.Popen[bytes] | None = None
    try:
        settings = services.s3_settings()
        if settings is None:
            raise RuntimeError(f"the S3 server in {home} did not come up: {services.status(['s3'])}")
        if not relay_to_bridge:
            yield BridgeS3(f"http://127.0.0.1:{port}", settings.access_key, settings.secret_key, services)
            return
        with (home / "s3-relay.log").open("ab") as log:
            relay = subprocess.Popen(
                ["socat", f"TCP-LISTEN:{port},bind={BRIDGE_IP},reuseaddr,fork", f"TCP:127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        endpoint = f"http://{BRIDGE_IP}:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{endpoint}/minio/health/live", timeout=2, trust_env=False).status_code == 200:
                    break
            if relay.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the S3 relay on {endpoint} does not answer (socat exit {relay.poll()})")
            time.sleep(0.2)
        yield BridgeS3(endpoint, settings.access_key, settings.secret_key, services)
    finally:
        if relay is not None and relay.poll() is None:
            os.killpg(relay.pid, signal.SIGTERM)
            relay.wait(timeout=10)
        services.down(["s3"])


@contextlib.contextmanager
def host_output_dir(root: Path) -> Iterator[Path]:
    """A directory on the host for the pods' hostPath volume, writable by Flink's uid (9999), removed after."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _plugin_jar() -> str:
    """The file name of Presto's S3 plugin in the image's ``/opt/flink/opt`` (the image build fetched it)."""
    from flinkops.api.plugins import S3_PRESTO
    from flinkops.flink.jars import plugin_jar

    return plugin_jar(S3_PRESTO, find_distribution().version).name


def verifier_deployment(
    name: str,
    *,
    s3: BridgeS3,
    bucket: str,
    host_dir: Path,
    logic: str = "v1",
    upgrade_mode: str = "savepoint",
    mode: str = "standalone",
    ha: bool = False,
    jobmanagers: int = 1,
    rate: float = 50,
    keys: int = 16,
    records: int = 0,
    parallelism: int = 2,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A FlinkDeployment of the verifier job (module docstring); its committed output goes to
    ``host_dir/<name>`` and its trace (``--trace-timestamps``) to ``host_dir/<name>-trace`` on the host.
    ``records=0`` runs unbounded; a bounded job ends FINISHED after that many records."""
    conf = {
        "taskmanager.numberOfTaskSlots": str(parallelism),
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.dir": f"s3://{bucket}/{name}/checkpoints",
        "execution.checkpointing.savepoint-dir": f"s3://{bucket}/{name}/savepoints",
        "s3.endpoint": s3.endpoint,
        "s3.path.style.access": "true",
        "kubernetes.env.secretKeyRef": (
            f"env:AWS_ACCESS_KEY_ID,secret:{S3_SECRET},key:access;"
            f"env:AWS_SECRET_ACCESS_KEY,secret:{S3_SECRET},key:secret"
        ),
        "containerized.master.env.ENABLE_BUILT_IN_PLUGINS": _plugin_jar(),
        "containerized.taskmanager.env.ENABLE_BUILT_IN_PLUGINS": _plugin_jar(),
        # Small requests (several clusters share 2 cores), but room to start a JVM quickly when the node is idle.
        "kubernetes.jobmanager.cpu.limit-factor": "8",
        "kubernetes.taskmanager.cpu.limit-factor": "8",
        "taskmanager.memory.jvm-metaspace.size": "160m",
        "jobmanager.memory.jvm-metaspace.size": "160m",
    }
    if ha:
        conf["high-availability.type"] = "kubernetes"
        conf["high-availability.storageDir"] = f"s3://{bucket}/{name}/ha"
    conf.update(extra or {})
    output, trace = f"{OUTPUT_MOUNT}/{name}", f"{OUTPUT_MOUNT}/{name}-trace"
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {
            "image": "flink:2.2",
            "imagePullPolicy": "Never",
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "mode": mode,
            "flinkConfiguration": conf,
            "podTemplate": {
                "spec": {
                    "containers": [
                        {"name": "flink-main-container", "volumeMounts": [{"name": "out", "mountPath": OUTPUT_MOUNT}]}
                    ],
                    "volumes": [{"name": "out", "hostPath": {"path": str(host_dir), "type": "Directory"}}],
                }
            },
            "jobManager": {"replicas": jobmanagers, "resource": {"memory": "704m", "cpu": 0.25}},
            "taskManager": {"resource": {"memory": "960m", "cpu": 0.25}},
            "job": {
                "jarURI": f"local://{TESTJOBS_IN_IMAGE}",
                "entryClass": ENTRY_CLASS,
                "args": job_args(
                    output,
                    records=records,
                    rate=rate,
                    keys=keys,
                    logic=logic,
                    trace=trace,
                    trace_timestamps=True,
                    checkpoint_interval_ms=0,
                ),
                "parallelism": parallelism,
                "upgradeMode": upgrade_mode,
            },
        },
    }


def batch_deployment(
    name: str, *, s3: BridgeS3, bucket: str, host_dir: Path, records: int, rate: float = 300
) -> dict[str, Any]:
    """The verifier job as a batch job (``execution.runtime-mode: BATCH``, no checkpoints, stateless upgrades):
    it reads ``records`` records and ends FINISHED, and its cluster is then released."""
    doc = verifier_deployment(
        name, s3=s3, bucket=bucket, host_dir=host_dir, upgrade_mode="stateless", records=records, rate=rate,
        extra={"execution.runtime-mode": "BATCH"},
    )  # fmt: skip
    del doc["spec"]["flinkConfiguration"]["execution.checkpointing.interval"]  # a batch job does not checkpoint
    return doc


class FlinkRest:
    """A JobManager's REST API at ``http://<ClusterIP>:8081``."""

    def __init__(self, cluster_ip: str) -> None:
        self.client = httpx.Client(base_url=f"http://{cluster_ip}:8081", timeout=3.0, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the JobManager knows (``/jobs/overview``); [] while it does not answer."""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = self.client.get("/jobs/overview")
            if response.status_code == 200:
                jobs: list[dict[str, Any]] = response.json().get("jobs") or []
                return jobs
        return []

    def running(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs() if j.get("state") == "RUNNING"]

    def all_tasks_running(self) -> bool:
        running = self.running()
        return bool(running) and all(
            (j.get("tasks") or {}).get("running") == (j.get("tasks") or {}).get("total") for j in running
        )


def trace_edges(trace: Path, moment: float) -> tuple[float | None, float | None]:
    """(last record processed by a task that started before ``moment``, first record processed by a task that
    started after it), epoch seconds, from the verifier's ``--trace-timestamps`` files (a file per task start)."""
    last_old: float | None = None
    first_new: float | None = None
    for f in trace_files(trace):
        stamps = [t / 1000 for t in f.times if t is not None]
        if not stamps:
            continue
        if min(stamps) < moment:
            last_old = max(stamps) if last_old is None else max(last_old, *stamps)
        else:
            first_new = min(stamps) if first_new is None else min(first_new, *stamps)
    return last_old, first_new
