"""Kubernetes client libraries side by side: import time, memory with informers, CPU per request and per watch
event, and the credential features flinkops needs, each against the hand-written client of the same run.

Setup: a fresh control plane (etcd, kube-apiserver, kube-controller-manager from ``flinkops.dev.kubernetes``),
flinkops' CRDs, 100 FlinkDeployments and 200 Deployments (the operator's children at 100 deployments), a
ServiceAccount token, and kubeconfigs whose user is an ``exec`` credential plugin
(``tests/fixtures/kube/exec_plugin.py``).

Candidates, each measured in fresh processes of its own:

* ``hand-written``: ``flinkops.kube.client`` as of ``--baseline-ref`` (the last commit before the swap), from
  ``git archive``; every ratio is against it;
* ``flinkops``: ``flinkops.kube.client`` of this tree;
* ``lightkube``, ``kr8s``, ``kubernetes`` (the official client): ``--lib NAME=DIR`` puts a library installed
  with ``pip install --target DIR`` on the path (libraries already in the virtualenv need no option).

For the two flinkops trees the operator itself is measured too (``flinkops operator run`` on a namespace of its
own): start until ``/readyz``, RSS when idle, then 100 FlinkDeployments applied until each is DEPLOYED with its
children, and the RSS (and peak) then.

Measured per candidate: import of the client plus a client built from the admin kubeconfig (median of 3 fresh
processes); RSS after that and after three informers (FlinkDeployments, FlinkSessionJobs, managed Deployments,
all namespaces) have listed and are watching; CPU per GET of a FlinkDeployment (300 calls) and per server-side
apply of a ConfigMap (100 calls); CPU per watch event (this process patches 300 FlinkDeployments while the
candidate's informers follow). The informers are the same list-then-watch loop over each library's own list and
watch calls, caching plain dicts. Feature probes run against the same API server: a client built from a
kubeconfig whose exec plugin returns the admin client certificate (``client.authentication.k8s.io/v1beta1`` and
``/v1``) or a ServiceAccount token, and how many times the plugin runs for 5 requests when its credential is
valid for an hour.

Run: ``.venv/bin/python benchmarks/kube_client.py [--lib lightkube=/tmp/lk] [--lib kubernetes=/tmp/k8s] ...``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REF = "87a1e6e"  # the last commit with the hand-written client (httpx, exec plugins refused)
NAMESPACE = "bench"
DEPLOYMENTS = 100
GETS, APPLIES, EVENTS = 300, 100, 300
MANAGED = "app.kubernetes.io/managed-by=flinkops"
LIBRARIES = ("lightkube", "kr8s", "kubernetes")

# (group/version, plural, kind) of what the informers follow and the requests touch
RESOURCES = {
    "fd": ("flink.apache.org/v1beta1", "flinkdeployments", "FlinkDeployment"),
    "fsj": ("flink.apache.org/v1beta1", "flinksessionjobs", "FlinkSessionJob"),
    "deploy": ("apps/v1", "deployments", "Deployment"),
}
INFORMERS = (("fd", None), ("fsj", None), ("deploy", MANAGED))


def say(message: str) -> None:
    print(message, flush=True)


# ================================================================================ the worker (one candidate)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _path(res: str, namespace: str | None = None, name: str | None = None) -> str:
    api, plural, _ = RESOURCES.get(res, ("v1", "configmaps", "ConfigMap"))
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return base + (f"/{name}" if name else "")


class FlinkopsAdapter:
    """``flinkops.kube.client`` (whichever tree is on the path): path-based calls."""

    def __init__(self, kubeconfig: str) -> None:
        from flinkops.kube.client import KubeClient, load_config

        self.make = lambda path: KubeClient(load_config(kubeconfig=path))
        self.client = self.make(kubeconfig)

    def list(self, res: str, label: str | None) -> tuple[list[dict[str, Any]], str]:
        page = self.client.list(_path(res), label_selector=label)
        return page["items"], page["metadata"]["resourceVersion"]

    def watch(self, res: str, version: str, label: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        while True:
            for kind, obj in self.client.watch(
                _path(res), resource_version=version, timeout_seconds=600, label_selector=label
            ):
                version = obj["metadata"]["resourceVersion"]
                yield kind, obj

    def get(self, res: str, namespace: str, name: str) -> Any:
        return self.client.get(_path(res, namespace, name))

    def apply(self, body: dict[str, Any]) -> Any:
        return self.client.apply(_path("cm", body["metadata"]["namespace"], body["metadata"]["name"]), body)

    def probe(self, kubeconfig: str) -> None:
        client = self.make(kubeconfig)
        if not client.get("/api/v1/namespaces/default"):
            raise RuntimeError("no answer")
        client.close()


class LightkubeAdapter:
    def __init__(self, kubeconfig: str) -> None:
        from lightkube import Client, codecs
        from lightkube.config.kubeconfig import KubeConfig
        from lightkube.generic_resource import create_namespaced_resource
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Namespace

        self.codecs, self.namespace_res = codecs, Namespace
        self.make = lambda path: Client(KubeConfig.from_file(path), field_manager="bench")
        self.client = self.make(kubeconfig)
        self.res: dict[str, Any] = {"deploy": Deployment}
        for key in ("fd", "fsj"):
            api, plural, kind = RESOURCES[key]
            group, version = api.split("/")
            self.res[key] = create_namespaced_resource(group, version, kind, plural)

    @staticmethod
    def _labels(label: str | None) -> dict[str, str] | None:
        return dict([label.split("=", 1)]) if label else None

    def list(self, res: str, label: str | None) -> tuple[list[dict[str, Any]], str]:
        found = self.client.list(self.res[res], namespace="*", labels=self._labels(label))
        items = [obj.to_dict() for obj in found]
        return items, found.resourceVersion

    def watch(self, res: str, version: str, label: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        for kind, obj in self.client.watch(
            self.res[res], namespace="*", labels=self._labels(label), resource_version=version, server_timeout=600
        ):
            yield kind, obj.to_dict()

    def get(self, res: str, namespace: str, name: str) -> Any:
        return self.client.get(self.res[res], name, namespace=namespace)

    def apply(self, body: dict[str, Any]) -> Any:
        return self.client.apply(self.codecs.from_dict(body), force=True)

    def probe(self, kubeconfig: str) -> None:
        client = self.make(kubeconfig)
        client.get(self.namespace_res, "default")
        client.close()


class Kr8sAdapter:
    def __init__(self, kubeconfig: str) -> None:
        import kr8s

        self.kr8s = kr8s
        self.api = kr8s.api(kubeconfig=kubeconfig)
        self.kinds = {key: f"{plural}.{api.split('/')[0]}" for key, (api, plural, _) in RESOURCES.items()}
        self.kinds["deploy"] = "deployments.apps"

    def list(self, res: str, label: str | None) -> tuple[list[dict[str, Any]], str]:
        # kr8s's get does not return the list's resourceVersion: the newest item's stands in for it
        found = self.api.get(self.kinds[res], namespace=self.kr8s.ALL, label_selector=label)
        items = [obj.raw for obj in found]
        version = max((int(i["metadata"]["resourceVersion"]) for i in items), default=0)
        return items, str(version)

    def watch(self, res: str, version: str, label: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        for kind, obj in self.api.watch(self.kinds[res], namespace=self.kr8s.ALL, label_selector=label, since=version):
            yield kind, obj.raw

    def get(self, res: str, namespace: str, name: str) -> Any:
        return list(self.api.get(self.kinds[res], name, namespace=namespace))  # the sync get is lazy

    apply = None  # kr8s has no server-side apply

    def probe(self, kubeconfig: str) -> None:
        list(self.kr8s.api(kubeconfig=kubeconfig).get("namespaces", "default"))


class KubernetesAdapter:
    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import client, config, watch

        self.k, self.watch_cls = client, watch.Watch
        self.make = lambda path: config.new_client_from_config(config_file=path)
        self.api = self.make(kubeconfig)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def list(self, res: str, label: str | None) -> tuple[list[dict[str, Any]], str]:
        api, plural, _ = RESOURCES[res]
        group, version = api.split("/")
        page = self.custom.list_cluster_custom_object(group, version, plural, label_selector=label or "")
        return page["items"], page["metadata"]["resourceVersion"]

    def watch(self, res: str, version: str, label: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        api, plural, _ = RESOURCES[res]
        group, ver = api.split("/")
        stream = self.watch_cls().stream(
            self.custom.list_cluster_custom_object,
            group,
            ver,
            plural,
            label_selector=label or "",
            resource_version=version,
            timeout_seconds=600,
        )
        for event in stream:
            yield event["type"], event["object"]

    def get(self, res: str, namespace: str, name: str) -> Any:
        api, plural, _ = RESOURCES[res]
        group, version = api.split("/")
        return self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)

    def apply(self, body: dict[str, Any]) -> Any:
        meta = body["metadata"]
        return self.core.patch_namespaced_config_map(
            meta["name"],
            meta["namespace"],
            body,
            field_manager="bench",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def probe(self, kubeconfig: str) -> None:
        self.k.CoreV1Api(self.make(kubeconfig)).read_namespace("default")


ADAPTERS = {
    "flinkops": FlinkopsAdapter,
    "lightkube": LightkubeAdapter,
    "kr8s": Kr8sAdapter,
    "kubernetes": KubernetesAdapter,
}


class Cache:
    """A list-then-watch cache of plain dicts: the same informer loop over every candidate."""

    def __init__(self, adapter: Any, res: str, label: str | None) -> None:
        items, version = adapter.list(res, label)
        self.objects = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in items}
        self.events = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.follow, args=(adapter, res, version, label), daemon=True)
        self.thread.start()

    def follow(self, adapter: Any, res: str, version: str, label: str | None) -> None:
        for kind, obj in adapter.watch(res, version, label):
            key = (obj["metadata"].get("namespace"), obj["metadata"].get("name"))
            with self.lock:
                if kind == "DELETED":
                    self.objects.pop(key, None)
                elif kind in ("ADDED", "MODIFIED"):
                    self.objects[key] = obj
                self.events += 1


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def worker(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    adapter = ADAPTERS[args.worker](args.kubeconfig)
    imported = time.perf_counter() - started
    if args.phase == "import":
        _emit(import_s=imported, rss=_rss_mib(), modules=len(sys.modules))
        return 0

    result: dict[str, Any] = {"rss_client": _rss_mib()}
    caches = [Cache(adapter, res, label) for res, label in INFORMERS]
    import gc

    gc.collect()
    result["rss_informers"] = _rss_mib()
    result["cached"] = sum(len(c.objects) for c in caches)

    cpu = time.process_time()
    for i in range(GETS):
        adapter.get("fd", NAMESPACE, f"job-{i % DEPLOYMENTS:03d}")
    result["cpu_get_ms"] = (time.process_time() - cpu) / GETS * 1000
    cpu = time.process_time()
    for i in range(APPLIES if adapter.apply is not None else 0):
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"bench-{i % 10}", "namespace": NAMESPACE},
            "data": {"n": str(i)},
        }
        adapter.apply(body)
    result["cpu_apply_ms"] = (time.process_time() - cpu) / APPLIES * 1000 if adapter.apply else float("nan")

    probes: dict[str, str] = {}
    configs = json.loads(args.probes)
    cache_config = configs.pop("exec-cache", None)
    for name, path in configs.items():
        try:
            adapter.probe(path)
            probes[name] = "yes"
        except Exception as exc:  # a probe reports what the library says, whatever it raises
            probes[name] = f"no ({type(exc).__name__})"
    if cache_config:  # one client, five requests: how often does the plugin run?
        try:
            client = ADAPTERS[args.worker](cache_config)
            for _ in range(5):
                client.get("fd", NAMESPACE, "job-000")
            probes["exec-cache"] = "yes"
        except Exception as exc:
            probes["exec-cache"] = f"no ({type(exc).__name__})"
    result["probes"] = probes

    fd_cache = caches[0]
    base_events = fd_cache.events
    cpu = time.process_time()
    _emit(ready=True)
    sys.stdin.readline()  # the driver has made its changes
    deadline = time.monotonic() + 120
    while fd_cache.events - base_events < EVENTS and time.monotonic() < deadline:
        time.sleep(0.05)
    got = fd_cache.events - base_events
    result["cpu_event_ms"] = (time.process_time() - cpu) / max(got, 1) * 1000
    result["events"] = got
    result["rss_end"] = _rss_mib()
    _emit(**result)
    return 0


# ================================================================================ the driver


def _prepare(plane: Any, admin: Any, work: Path) -> tuple[dict[str, str], Path]:
    from support.kube import install_crds, server_side_apply, service_account_token
    from support.kubeconfigs import V1, V1BETA1, exec_user, write_kubeconfig
    from support.operator import sample_deployment

    install_crds(admin)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    server_side_apply(admin, f"/api/v1/namespaces/{NAMESPACE}", namespace)
    for i in range(DEPLOYMENTS):
        body = sample_deployment(f"job-{i:03d}")
        body["metadata"]["namespace"] = NAMESPACE
        server_side_apply(admin, _path("fd", NAMESPACE, f"job-{i:03d}"), body)
        for component in ("jobmanager", "taskmanager"):
            name = f"job-{i:03d}-{component}" if component == "taskmanager" else f"job-{i:03d}"
            labels = {"app": f"job-{i:03d}", "component": component, "app.kubernetes.io/managed-by": "flinkops"}
            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": f"flink-main-container-{component}", "image": "flink:2.2"}]},
                    },
                },
            }
            server_side_apply(admin, _path("deploy", NAMESPACE, name), deployment)
    # a ServiceAccount token the API server itself verifies, bound to cluster-admin for the probes
    token = work / "token"
    token.write_text(service_account_token(admin, NAMESPACE, "prober"))
    cert = ("--cert", str(plane.admin_cert_file), "--key", str(plane.admin_key_file))
    calls = work / "exec-calls.log"

    def kubeconfig(name: str, user: dict[str, Any]) -> str:
        return str(write_kubeconfig(work / name, plane.endpoint, user, ca_file=plane.ca_file, namespace=NAMESPACE))

    probes = {
        "exec-cert-v1beta1": kubeconfig("cert-beta.yaml", exec_user(*cert, api_version=V1BETA1)),
        "exec-cert-v1": kubeconfig("cert-v1.yaml", exec_user(*cert, api_version=V1)),
        "exec-token": kubeconfig("token.yaml", exec_user("--token-file", str(token))),
        "token-file": kubeconfig("token-file.yaml", {"tokenFile": str(token)}),
        "exec-cache": kubeconfig(
            "cache.yaml", exec_user("--token-file", str(token), "--expires-in", "3600", "--log", str(calls))
        ),
    }
    return probes, calls


def _run_worker(
    name: str, adapter: str, pythonpath: str, kubeconfig: str, phase: str, probes: dict[str, str], admin: Any
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("KUBECONFIG", None)
    argv = [sys.executable, __file__, "--worker", adapter, "--kubeconfig", kubeconfig, "--phase", phase]
    argv += ["--probes", json.dumps(probes)]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            fields = json.loads(line)
            if fields.get("ready"):
                for i in range(EVENTS):
                    admin.patch(
                        _path("fd", NAMESPACE, f"job-{i % DEPLOYMENTS:03d}"),
                        json={"metadata": {"annotations": {"bench/touch": str(time.time_ns())}}},
                        headers={"Content-Type": "application/merge-patch+json"},
                    ).raise_for_status()
                proc.stdin.write("go\n")
                proc.stdin.flush()
                continue
            proc.kill()
            return dict(fields)
        stderr = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{name} ({phase}) ended without a result:\n{stderr[-2000:]}")


def _proc_mib(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (peak) of a live process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _operator(plane: Any, admin: Any, pythonpath: str, namespace: str, work: Path) -> dict[str, float]:
    """``flinkops operator run`` from one tree on an empty namespace: start → ready, RSS; then 100
    FlinkDeployments until each is DEPLOYED with its children: the time and RSS then."""
    import httpx

    from flinkops.dev.process import free_port
    from support.kube import server_side_apply
    from support.operator import sample_deployment

    server_side_apply(
        admin,
        f"/api/v1/namespaces/{namespace}",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": pythonpath, "POD_NAME": f"bench-{namespace}"}
    env.pop("KUBECONFIG", None)
    argv = [sys.executable, "-m", "flinkops", "operator", "run", "--kubeconfig", str(plane.kubeconfig)]
    argv += ["--namespace", namespace, "--lease-namespace", namespace, "--http-address", "127.0.0.1"]
    argv += ["--http-port", str(port), "--log-format", "json"]
    started = time.monotonic()
    with (work / f"operator-{namespace}.log").open("wb") as log:
        operator = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if operator.poll() is not None or time.monotonic() - started > 60:
                raise RuntimeError(f"the operator in {namespace} did not become ready")
            time.sleep(0.02)
        ready = time.monotonic() - started
        time.sleep(3)  # settle: the first resync of empty caches
        fresh, _ = _proc_mib(operator.pid)
        applied = time.monotonic()
        for i in range(DEPLOYMENTS):
            body = sample_deployment(f"op-{i:03d}")
            body["metadata"]["namespace"] = namespace
            server_side_apply(admin, _path("fd", namespace, f"op-{i:03d}"), body)

        def deployed() -> int:
            items = admin.get(_path("fd", namespace), params={"limit": "500"}).json()["items"]
            return sum(1 for i in items if (i.get("status") or {}).get("lifecycleState") == "DEPLOYED")

        while deployed() < DEPLOYMENTS:
            if time.monotonic() - applied > 600:
                raise RuntimeError(f"the operator in {namespace} did not deploy {DEPLOYMENTS} resources")
            time.sleep(0.5)
        settled = time.monotonic() - applied
        rss, peak = _proc_mib(operator.pid)
        return {"op_ready_s": ready, "op_rss_fresh": fresh, "op_deploy_s": settled, "op_rss_100": rss, "op_hwm": peak}
    finally:
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", action="append", default=[], help="NAME=DIR: a library installed into DIR")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--probes", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sys.path.insert(0, str(ROOT / "tests"))
    from flinkops.dev.kubernetes import KubeControlPlane
    from flinkops.dev.process import free_port

    work = Path(tempfile.mkdtemp(prefix="flinkops-bench-kclient-"))
    baseline = work / "baseline"
    baseline.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", args.baseline_ref, "src/flinkops"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    src = str(ROOT / "src")
    candidates: list[tuple[str, str, str]] = [
        ("hand-written", "flinkops", str(baseline / "src")),
        ("flinkops", "flinkops", src),
    ]
    extra = dict(item.split("=", 1) for item in args.lib)
    for lib in LIBRARIES:
        if lib in extra:
            candidates.append((lib, lib, os.pathsep.join([src, extra[lib]])))
        elif subprocess.run([sys.executable, "-c", f"import {lib}"], capture_output=True).returncode == 0:
            candidates.append((lib, lib, src))

    plane = KubeControlPlane(work / "kube", free_port(), progress=say, durable=False)
    say(f"starting the control plane in {work}")
    plane.start(timeout=300)
    try:
        admin = plane.admin_client(timeout=60)
        say(f"creating {DEPLOYMENTS} FlinkDeployments, {2 * DEPLOYMENTS} Deployments and the probe kubeconfigs")
        probes, calls = _prepare(plane, admin, work)
        kubeconfig = str(plane.kubeconfig)
        results: dict[str, dict[str, Any]] = {}
        for name, adapter, path in candidates:
            say(f"measuring {name}")
            imports = [_run_worker(name, adapter, path, kubeconfig, "import", {}, admin) for _ in range(3)]
            calls.write_text("")
            full = _run_worker(name, adapter, path, kubeconfig, "full", probes, admin)
            full["exec_calls_for_5"] = len(calls.read_text().splitlines())
            full["import_s"] = statistics.median(i["import_s"] for i in imports)
            full["rss_import"] = statistics.median(i["rss"] for i in imports)
            full["modules"] = imports[0]["modules"]
            results[name] = full
        # last: the operators' resources and children would otherwise fill the informers measured above
        for name, adapter, path in candidates:
            if adapter == "flinkops":
                say(f"operator from {name}: start, idle, then {DEPLOYMENTS} FlinkDeployments")
                results[name].update(_operator(plane, admin, path, f"op-{name}", work))
        _report(results)
        return 0
    finally:
        plane.stop()


def _report(results: dict[str, dict[str, Any]]) -> None:
    base = results["hand-written"]
    rows = [
        ("import + client (ms)", "import_s", 1000.0),
        ("RSS after import (MiB)", "rss_import", 1.0),
        ("RSS with 3 informers, 100 deployments (MiB)", "rss_informers", 1.0),
        ("CPU per GET (ms)", "cpu_get_ms", 1.0),
        ("CPU per server-side apply (ms)", "cpu_apply_ms", 1.0),
        ("CPU per watch event (ms)", "cpu_event_ms", 1.0),
        ("modules loaded", "modules", 1.0),
    ]
    names = list(results)
    say("")
    say(f"{'':46}" + "".join(f"{n:>22}" for n in names))
    for label, key, scale in rows:
        cells = []
        for name in names:
            value = results[name][key] * scale
            ratio = value / (base[key] * scale) if base[key] else float("nan")
            cells.append(f"{value:10.2f} ({ratio:4.2f}x)".rjust(22))
        say(f"{label:46}" + "".join(cells))
    say("")
    probe_names = sorted({p for r in results.values() for p in r["probes"]})
    for probe in probe_names:
        say(f"{probe:46}" + "".join(f"{results[n]['probes'].get(probe, '-'):>22}" for n in names))
    for label, key in (
        ("operator start -> ready (s)", "op_ready_s"),
        ("operator RSS, fresh (MiB)", "op_rss_fresh"),
        (f"operator: {DEPLOYMENTS} applied -> all DEPLOYED (s)", "op_deploy_s"),
        (f"operator RSS at {DEPLOYMENTS} deployments (MiB)", "op_rss_100"),
        ("operator peak RSS (MiB)", "op_hwm"),
    ):
        cells = [
            (f"{results[n][key]:10.2f} ({results[n][key] / base[key]:4.2f}x)" if key in results[n] else "-").rjust(22)
            for n in names
        ]
        say(f"{label:46}" + "".join(cells))
    say(f"{'objects in the informers':46}" + "".join(f"{results[n]['cached']:>22}" for n in names))
    say(
        f"{'exec plugin runs for 5 requests (valid 1 h)':46}"
        + "".join(f"{results[n]['exec_calls_for_5']:>22}" for n in names)
    )
    say(f"{'watch events seen (of ' + str(EVENTS) + ')':46}" + "".join(f"{results[n]['events']:>22}" for n in names))


if __name__ == "__main__":
    sys.exit(main())
