"""The admission webhook's cost at ``kubectl apply``: server-side applies of FlinkDeployments through a real
kube-apiserver, into a namespace the webhook validates and into one it does not, in the same run.

Setup: a fresh control plane (``flinkops.dev.kubernetes``), flinkops' CRDs, two namespaces, and the webhook in a
process of its own (``wiring.webhook.WebhookServer``, as the operator serves it) on 127.0.0.1 with a CA made for
the run; a ValidatingWebhookConfiguration (URL client config, failurePolicy Fail) whose namespaceSelector matches
only the first namespace. Each round server-side applies the same FlinkDeployment into both namespaces, the order
alternating; the first ``NAMES`` rounds create, the rest update the spec (parallelism changes), so every review is
a full validation and lint. ``WARMUP`` rounds are not counted.

Printed: p50, p99 and mean per apply with and without the webhook, what the webhook adds at p50 and p99, the
ratio of the p99s, and the webhook's own answer time measured by posting the same AdmissionReview to it directly
(keep-alive, as the API server calls it). Goal: p99 added <= 50 ms.

Run: ``.venv/bin/python benchmarks/webhook.py [--rounds 400]``
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.admission_specs import url_webhook_configuration, valid_deployment  # noqa: E402
from support.kube import install_crds  # noqa: E402

NAMES = 50
WARMUP = 20
GOAL_MS = 50.0

# The webhook tests' valid deployment, sized like a production job (RocksDB, incremental checkpoints, 2 TaskManagers).
DEPLOYMENT: dict[str, Any] = valid_deployment()
del DEPLOYMENT["metadata"]
DEPLOYMENT["spec"]["flinkConfiguration"].update(
    {
        "execution.checkpointing.interval": "30s",
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true",
    }
)
DEPLOYMENT["spec"]["taskManager"] = {"resource": {"memory": "4096m", "cpu": 2}, "replicas": 2}


def say(message: str) -> None:
    print(f"[webhook-bench] {message}", file=sys.stderr, flush=True)


def serve(directory: Path, port_file: Path) -> int:
    """The webhook in this process until killed (what ``flinkops operator run --webhook-port`` serves)."""
    from flinkops.wiring.webhook import FileCertificates, WebhookServer

    server = WebhookServer(FileCertificates(directory), "127.0.0.1", 0, reload=3600).start()
    port_file.write_text(str(server.port))
    while True:
        time.sleep(3600)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def apply(admin: httpx.Client, namespace: str, name: str, parallelism: int) -> float:
    body = json.loads(json.dumps(DEPLOYMENT))
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["job"]["parallelism"] = parallelism
    started = time.perf_counter()
    answer = admin.patch(
        f"/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments/{name}",
        content=json.dumps(body),
        params={"fieldManager": "bench", "force": "true", "fieldValidation": "Strict"},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    elapsed = time.perf_counter() - started
    if answer.status_code not in (200, 201):
        raise SystemExit(f"apply into {namespace} failed: {answer.status_code} {answer.text[:500]}")
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(Path(args.serve), Path(args.port_file))

    from flinkops.dev.kubernetes import KubeControlPlane
    from flinkops.dev.process import free_port
    from flinkops.wiring.webhook import make_ca, make_serving

    work = Path(tempfile.mkdtemp(prefix="flinkops-bench-webhook-"))
    now = dt.datetime.now(dt.UTC)
    ca = make_ca(now)
    leaf = make_serving(ca, ["127.0.0.1"], now)
    certs = work / "certs"
    certs.mkdir()
    (certs / "tls.crt").write_bytes(leaf.cert)
    (certs / "tls.key").write_bytes(leaf.key)
    (certs / "ca.crt").write_bytes(ca.cert)
    port_file = work / "port"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    webhook = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(certs), "--port-file", str(port_file)], env=env
    )
    plane = KubeControlPlane(work / "kube", free_port(), progress=say, durable=False)
    say(f"starting the control plane in {work}")
    plane.start(timeout=300)
    try:
        admin = plane.admin_client(timeout=30)
        install_crds(admin)
        for namespace in ("hooked", "plain"):
            admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
        while not port_file.exists():
            if webhook.poll() is not None:
                raise SystemExit("the webhook process exited")
            time.sleep(0.05)
        port = int(port_file.read_text())
        hook = url_webhook_configuration("flinkops-bench", "hooked", port, ca_bundle=base64.b64encode(ca.cert).decode())
        admin.post(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json=hook
        ).raise_for_status()
        # Until the API server has the configuration, a bad name would be stored: wait until it is refused.
        deadline = time.monotonic() + 30
        while True:
            bad = json.loads(json.dumps(DEPLOYMENT))
            bad["metadata"] = {"name": "not.a.flink.name", "namespace": "hooked"}
            answer = admin.post("/apis/flink.apache.org/v1beta1/namespaces/hooked/flinkdeployments", json=bad)
            if "denied the request" in answer.text:
                break
            if answer.status_code in (200, 201):
                admin.delete("/apis/flink.apache.org/v1beta1/namespaces/hooked/flinkdeployments/not.a.flink.name")
            if time.monotonic() > deadline:
                raise SystemExit(f"the API server never called the webhook: {answer.text[:300]}")
            time.sleep(0.1)

        say(f"{args.rounds} rounds of one apply per namespace ({WARMUP} not counted)")
        times: dict[str, list[float]] = {"hooked": [], "plain": []}
        for i in range(args.rounds + WARMUP):
            name, parallelism = f"fraud-{i % NAMES}", 1 + (i // NAMES) % 8
            order = ("hooked", "plain") if i % 2 == 0 else ("plain", "hooked")
            for namespace in order:
                took = apply(admin, namespace, name, parallelism)
                if i >= WARMUP:
                    times[namespace].append(took)

        # The webhook's own answer time, as the API server calls it (one kept-alive TLS connection).
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "bench",
                "operation": "CREATE",
                "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
                "namespace": "hooked",
                "object": {**DEPLOYMENT, "metadata": {"name": "fraud", "namespace": "hooked"}},
            },
        }
        direct: list[float] = []
        trust = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        with httpx.Client(verify=trust) as client:
            for i in range(args.rounds + WARMUP):
                started = time.perf_counter()
                client.post(f"https://127.0.0.1:{port}/validate", json=review).raise_for_status()
                if i >= WARMUP:
                    direct.append((time.perf_counter() - started) * 1000)
    finally:
        plane.stop()
        webhook.kill()
        webhook.wait()

    def row(label: str, values: list[float]) -> str:
        return (
            f"{label:<34} p50 {percentile(values, 0.5):7.2f} ms   p99 {percentile(values, 0.99):7.2f} ms   "
            f"mean {statistics.fmean(values):7.2f} ms"
        )

    with_hook, without = times["hooked"], times["plain"]
    added_p50 = percentile(with_hook, 0.5) - percentile(without, 0.5)
    added_p99 = percentile(with_hook, 0.99) - percentile(without, 0.99)
    print(f"server-side apply of a FlinkDeployment, {len(with_hook)} per namespace, same API server, same run")
    print(row("without the webhook (baseline)", without))
    print(row("with the webhook", with_hook))
    print(row("the webhook alone (direct POST)", direct))
    print(
        f"added by the webhook: p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms (goal: p99 added <= {GOAL_MS:.0f} ms)"
    )
    ratio = percentile(with_hook, 0.99) / percentile(without, 0.99)
    print(f"ratio with/without: p99 {ratio:.2f}x, p50 {percentile(with_hook, 0.5) / percentile(without, 0.5):.2f}x")
    print("goal met" if added_p99 <= GOAL_MS else "goal MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
