"""Operator scale: N FlinkDeployments applied at once to a real kube-apiserver, until each has children and status.

Setup: a fresh control plane (etcd, kube-apiserver, kube-controller-manager from ``flinkops.dev.kubernetes``; no
kubelet), the CRDs, two namespaces, and one operator process (``flinkops operator run``, leader election on).

Measured:

* **operator**: all N resources applied at once (8 client threads), timed until every one has its JobManager
  Deployment stamped with its generation and a status with ``lifecycleState: DEPLOYED``; the operator's peak RSS
  (VmHWM) and CPU seconds (user + system) over the run; the API server's request count (its own
  ``apiserver_request_total``) during the run, and the operator's share of it (its client's counts);
* **baseline, same run**: the floor the API server sets for the same work without any operator logic: the
  same N custom resources plus exactly the children the operator rendered for one of them (as many objects, of
  the same size), server-side-applied by a plain client with the same 8 threads, plus one status write per
  resource. The ratio says how much of the operator's time is its own.

Run: ``.venv/bin/python benchmarks/operator_scale.py [--count 500]`` (the first run builds the control plane's
binaries; cached afterwards).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from flinkops.dev.kubernetes import KubeControlPlane  # noqa: E402
from flinkops.dev.process import free_port  # noqa: E402
from support.kube import install_crds  # noqa: E402
from support.operator import sample_deployment  # noqa: E402

THREADS = 8
GENERATION = "flinkops.io/generation"


def say(message: str) -> None:
    print(message, flush=True)


def apply(client: httpx.Client, path: str, body: dict[str, Any], manager: str = "bench") -> dict[str, Any]:
    response = client.patch(
        path,
        content=yaml.safe_dump(body),
        params={"fieldManager": manager, "force": "true"},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


def fd_path(ns: str, name: str = "") -> str:
    return f"/apis/flink.apache.org/v1beta1/namespaces/{ns}/flinkdeployments" + (f"/{name}" if name else "")


def child_path(obj: dict[str, Any]) -> str:
    plural = {"Deployment": "deployments", "Service": "services", "ConfigMap": "configmaps"}[obj["kind"]]
    api = "apis/apps/v1" if obj["kind"] == "Deployment" else "api/v1"
    return f"/{api}/namespaces/{obj['metadata']['namespace']}/{plural}/{obj['metadata']['name']}"


def request_total(client: httpx.Client) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak RSS in bytes of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def in_parallel(work: list[Callable[[], Any]]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(w) for w in work]:
            future.result()


def wait_until(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def deployed_names(client: httpx.Client, ns: str) -> set[str]:
    """Resources whose status says DEPLOYED for their generation and whose JobManager Deployment carries it."""
    items = client.get(fd_path(ns), params={"limit": "5000"}).json()["items"]
    stamped = {
        d["metadata"]["name"]: d["metadata"].get("annotations", {}).get(GENERATION)
        for d in client.get(
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            params={"labelSelector": "app.kubernetes.io/managed-by=flinkops,component=jobmanager", "limit": "5000"},
        ).json()["items"]
    }
    done = set()
    for item in items:
        name, generation = item["metadata"]["name"], str(item["metadata"]["generation"])
        status = item.get("status") or {}
        if status.get("lifecycleState") == "DEPLOYED" and stamped.get(name) == generation:
            done.add(name)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--qps", type=float, default=None, help="the operator's API request rate limit (default: its own default)"
    )
    args = parser.parse_args()
    n = args.count
    work = Path(tempfile.mkdtemp(prefix="flinkops-bench-k8s-"))
    plane = KubeControlPlane(work / "kube", free_port(), progress=say, durable=False)
    say(f"starting the control plane in {work}")
    plane.start(timeout=300)
    operator: subprocess.Popen[bytes] | None = None
    try:
        admin = plane.admin_client(timeout=60)
        install_crds(admin)
        for ns in ("bench-base", "bench-op", "flinkops-system"):
            apply(
                admin, f"/api/v1/namespaces/{ns}", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )

        # --- the children one resource gets, rendered by the operator's own code, for the baseline
        from flinkops.api.models import FlinkDeployment
        from flinkops.flink.config import RenderInputs, render_flink_config
        from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
        from flinkops.runtimes.kubernetes.render import render_request

        # --- baseline: the API floor for the same objects, no operator
        say(f"baseline: applying {n} resources, their children and one status write each with a plain client")
        before = request_total(admin)
        started = time.monotonic()

        def baseline_one(i: int) -> None:
            name = f"job-{i:04d}"
            body = sample_deployment(name)
            body["metadata"]["namespace"] = "bench-base"
            created = apply(admin, fd_path("bench-base", name), body)
            fd = FlinkDeployment.model_validate(created)
            config = render_flink_config(
                fd.spec, RenderInputs(name=name, namespace="bench-base", default_state_uri=None, python_executable="")
            )
            request = ClusterRequest(
                key=ClusterKey("bench-base", name),
                generation=1,
                flink_config=config,
                application=ApplicationJob(
                    entry_class="", args=(), job_id="0" * 32, jar_uri=body["spec"]["job"]["jarURI"]
                ),
                resource=fd,
            )
            for child in render_request(request):
                apply(admin, child_path(child), child)
            status_body = copy.deepcopy(created)
            status_body["status"] = {"lifecycleState": "DEPLOYED", "observedGeneration": 1}
            admin.put(fd_path("bench-base", name) + "/status", json=status_body).raise_for_status()

        in_parallel([lambda i=i: baseline_one(i) for i in range(n)])
        baseline_seconds = time.monotonic() - started
        baseline_requests = request_total(admin) - before
        say(f"baseline: {baseline_seconds:.1f}s, {baseline_requests:.0f} API requests")

        # --- the operator
        log = work / "operator.log"
        port = free_port()
        env = {**os.environ, "POD_NAME": "bench-operator"}
        env.pop("KUBECONFIG", None)
        with log.open("wb") as out:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flinkops",
                    "operator",
                    "run",
                    "--kubeconfig",
                    str(plane.kubeconfig),
                    "--namespace",
                    "bench-op",
                    "--lease-namespace",
                    "flinkops-system",
                    "--http-address",
                    "127.0.0.1",
                    "--http-port",
                    str(port),
                    "--log-format",
                    "json",
                    *(["--qps", str(args.qps)] if args.qps else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until(
            "the operator to lead",
            lambda: "flinkops_leader 1.0" in _get(f"http://127.0.0.1:{port}/metrics").splitlines(),
            60,
        )
        cpu0, _ = proc_usage(operator.pid)
        before = request_total(admin)
        say(f"operator: applying {n} resources at once")
        started = time.monotonic()

        def apply_one(i: int) -> None:
            body = sample_deployment(f"job-{i:04d}")
            body["metadata"]["namespace"] = "bench-op"
            apply(admin, fd_path("bench-op", f"job-{i:04d}"), body)

        in_parallel([lambda i=i: apply_one(i) for i in range(n)])
        applied = time.monotonic() - started
        progress = {"done": 0}

        def all_done() -> bool:
            progress["done"] = len(deployed_names(admin, "bench-op"))
            return progress["done"] >= n

        stop = threading.Event()
        peak = {"rss": 0}

        def sample() -> None:
            while not stop.wait(0.5):
                try:
                    peak["rss"] = max(peak["rss"], proc_usage(operator.pid)[1])  # type: ignore[union-attr]
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        wait_until(f"{n} resources deployed", all_done, args.timeout)
        operator_seconds = time.monotonic() - started
        stop.set()
        cpu1, hwm = proc_usage(operator.pid)
        operator_requests = request_total(admin) - before
        own = _get(f"http://127.0.0.1:{port}/metrics")
        own_requests = sum(
            float(line.rsplit(" ", 1)[1])
            for line in own.splitlines()
            if line.startswith("flinkops_kube_requests_total{")
        )
        say("")
        say(f"resources: {n} FlinkDeployments (applied in {applied:.1f}s by {THREADS} client threads)")
        ratio = operator_seconds / baseline_seconds
        say(
            f"time until all have children and status: operator {operator_seconds:.1f}s, "
            f"baseline {baseline_seconds:.1f}s, ratio {ratio:.2f}"
        )
        say(f"operator CPU: {cpu1 - cpu0:.1f}s user+system ({(cpu1 - cpu0) / n * 1000:.1f} ms per resource)")
        say(f"operator peak RSS: {max(hwm, peak['rss']) / 2**20:.0f} MiB")
        say(
            f"API server requests during the run: {operator_requests:.0f} (operator's own client: "
            f"{own_requests:.0f}, {own_requests / n:.1f} per resource); baseline {baseline_requests:.0f}"
        )
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
        plane.stop()


def _get(url: str) -> str:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
