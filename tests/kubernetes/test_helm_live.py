"""The Helm chart against a real kube-apiserver (the session's ``kube`` control plane, tests/support/kube.py).

1. Every object the chart renders (default values, two watched namespaces, every namespace, two replicas) is
   server-side applied with ``dryRun=All`` and ``fieldValidation=Strict``: the apiserver validates it against
   its OpenAPI schemas and refuses unknown or duplicate fields, so a misspelt key or a field at the wrong level
   fails here instead of being dropped silently at install time. A control object with a bogus field must be
   refused the same way, so a passing test cannot come from validation being off.
2. The chart's CRDs (crds/) are applied for real and must become Established.
3. The objects are applied for real into namespaces that enforce Pod Security "restricted"; the
   controller-manager's ReplicaSet must then get an operator Pod past PodSecurity admission (a control Pod
   without the chart's securityContext is refused in the same namespace).
4. The apiserver's authorizer answers SubjectAccessReviews for the operator's and Flink's ServiceAccounts:
   everything the chart means to grant is allowed in a watched namespace; Secrets are refused everywhere; an
   unwatched namespace is refused entirely; leader election reaches only the release's own Lease.
5. The operator is started the way the chart's Deployment starts it (its command, arguments and environment,
   the downward API filled in, the ServiceAccount's token) with pyflink unimportable, as in the image: it must
   take the Lease and become ready on the chart's /readyz, logging JSON. (tests/kubernetes/test_operator_live.py
   covers what the operator then does.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flinkops.dev.process import free_port
from support.helm import CHART, JOB_RULES, OPERATOR_RULES, Manifest, documents_of, helm, render, render_documents
from support.kube import KubeCluster
from support.operator import service_account_kubeconfig, wait_for

pytestmark = pytest.mark.integration

FIELD_MANAGER = "flinkops-helm-test"
# The gateway with client-certificate sign-in only (no provider needed): CN ci.example may look at everything.
GATEWAY_VALUES: dict[str, Any] = {
    "enabled": True,
    "tlsSecret": "gateway-tls",
    "certificateRules": [{"name": "ci", "exact": "ci.example"}],
    "roles": [{"subjects": ["cert:ci"], "role": "viewer"}],
}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


class Api:
    """Just enough of the API for these tests: discovery-based paths, server-side apply, SubjectAccessReview."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    def _plural(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the apiserver's discovery document for its group version."""
        if api_version not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = self.client.get(base)
            listing.raise_for_status()
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in listing.json()["resources"] if "/" not in r["name"]
            }
        return self._resources[api_version][kind]

    def path(self, obj: Manifest) -> str:
        api_version, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
        plural, namespaced = self._plural(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scope = f"/namespaces/{meta['namespace']}" if namespaced else ""
        return f"{base}{scope}/{plural}/{meta['name']}"

    def apply(
        self, obj: Manifest, *, dry_run: bool, text: str | None = None, validation: str = "Strict"
    ) -> httpx.Response:
        """Server-side apply of ``obj``, sent as ``text`` when given (the YAML exactly as Helm rendered it)."""
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": validation, "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        return self.client.patch(
            self.path(obj),
            params=params,
            content=(text if text is not None else yaml.safe_dump(obj)).encode(),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        created = self.client.post("/api/v1/namespaces", json=body)
        assert created.status_code == 201, created.text

    def eventually_allowed(self, account: str, namespace: str, verb: str, group: str, resource: str) -> bool:
        """``allowed``, asked again for up to 30 s while the answer is no (RBAC objects just applied reach the
        authorizer through its watch)."""
        deadline = time.monotonic() + 30
        while not self.allowed(account, namespace, verb, group, resource):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def allowed(self, account: str, namespace: str, verb: str, group: str, resource: str, **extra: str) -> bool:
        """The authorizer's answer for ServiceAccount ``namespace/account`` (as its token would authenticate)."""
        account_ns, name = account.split("/")
        resource, _, subresource = resource.partition("/")
        attributes = {"verb": verb, "group": group, "resource": resource, **extra}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{account_ns}:{name}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account_ns}", "system:authenticated"],
                "resourceAttributes": attributes,
            },
        }
        answer = self.client.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
        assert answer.status_code == 201, answer.text
        return bool(answer.json()["status"].get("allowed"))


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[Api]:
    with kube.client() as client:
        yield Api(client)


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    """Namespaces unique to this module's run: the control plane is shared by the whole session."""
    suffix = uuid.uuid4().hex[:6]
    return {
        "release": f"flinkops-system-{suffix}",
        "team_a": f"team-a-{suffix}",
        "team_b": f"team-b-{suffix}",
        "unwatched": f"elsewhere-{suffix}",
        "all_release": f"flinkops-all-{suffix}",
    }


@pytest.fixture(scope="module")
def installed(api: Api, names: dict[str, str]) -> Iterator[list[Manifest]]:
    """The chart watching two namespaces, applied for real (after the CRDs), in "restricted" namespaces."""
    restricted = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    for key in ("release", "team_a", "team_b", "unwatched"):
        api.create_namespace(names[key], restricted)
    try:
        apply_crds(api)
        objects = render(
            {"watchNamespaces": [names["team_a"], names["team_b"]]}, release="flinkops", namespace=names["release"]
        )
        for obj in objects:
            applied = api.apply(obj, dry_run=False)
            assert applied.status_code in (200, 201), f"{obj['kind']}/{obj['metadata']['name']}: {applied.text}"
        yield objects
    finally:
        for key in ("release", "team_a", "team_b", "unwatched"):
            api.client.delete(f"/api/v1/namespaces/{names[key]}")


def apply_crds(api: Api) -> None:
    crds = [yaml.safe_load(path.read_text()) for path in sorted((CHART / "crds").glob("*.yaml"))]
    assert crds, "the chart has no CRDs in crds/"
    for crd in crds:
        applied = api.apply(crd, dry_run=False)
        assert applied.status_code in (200, 201), f"{crd['metadata']['name']}: {applied.text}"
    deadline = time.monotonic() + 60
    pending = {crd["metadata"]["name"] for crd in crds}
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            got = api.client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
            conditions = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                pending.discard(name)
        time.sleep(0.2)
    assert not pending, f"CRDs not Established within 60 s: {sorted(pending)}"


# ------------------------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": ["team_a", "team_b"]},
        {"watchAllNamespaces": True},
        {"replicas": 2},
        {"webhook": {"enabled": True}},
        {"webhook": {"enabled": True, "certManager": {"enabled": True}}},
        {
            "webhook": {
                "enabled": True,
                "certManager": {"enabled": True, "issuerRef": {"name": "corp", "kind": "ClusterIssuer"}},
            }
        },
        {"gateway": GATEWAY_VALUES},
        {"watchAllNamespaces": True, "gateway": {**GATEWAY_VALUES, "replicas": 2}},
    ],
    ids=[
        "defaults",
        "two-namespaces",
        "all-namespaces",
        "two-replicas",
        "webhook",
        "cert-manager",
        "cert-manager-issuer",
        "gateway",
        "gateway-all-namespaces",
    ],
)
def test_every_rendered_object_passes_strict_server_side_validation(
    api: Api, names: dict[str, str], installed: list[Manifest], values: dict[str, Any], cert_manager: None
) -> None:
    """dryRun=All changes nothing, so every variation can be checked against the same cluster. The cert-manager
    variations' Certificate and Issuer are checked against cert-manager's own CRDs (``cert_manager``)."""
    if "watchNamespaces" in values:
        values = {"watchNamespaces": [names[n] for n in values["watchNamespaces"]]}
    documents = render_documents(values, release="flinkops-dry", namespace=names["release"])
    assert documents
    for text, obj in documents:
        # The text as Helm wrote it: a key rendered twice must reach the apiserver twice, not parsed away.
        answer = api.apply(obj, dry_run=True, text=text)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert answer.status_code in (200, 201), f"{where} refused: {answer.text}"
        # Strict validation reports duplicate fields as errors; PodSecurity "warn" reports pod templates that
        # the namespace's "restricted" level would refuse. Neither may say anything.
        assert "warning" not in {k.lower() for k in answer.headers}, f"{where}: {answer.headers.get('warning')}"


@pytest.fixture(scope="module")
def cert_manager(api: Api) -> None:
    """cert-manager's CRDs installed (server-side applied, so other modules' runs may apply them too)."""
    from support.certmanager import cert_manager_crds
    from support.kube import crd_established

    crds = cert_manager_crds()
    for crd in crds:
        answer = api.apply(crd, dry_run=False, validation="Ignore")
        assert answer.status_code in (200, 201), answer.text
    for crd in crds:
        wait_for(
            f"{crd['metadata']['name']} established",
            lambda c=crd: crd_established(api.client, c["metadata"]["name"]),
            60,
        )


def test_a_certificate_cert_manager_would_refuse_is_refused(
    api: Api, names: dict[str, str], cert_manager: None
) -> None:
    """The control for the cert-manager variations: its schema is really there and strict."""
    objects = render({"webhook": {"enabled": True, "certManager": {"enabled": True}}}, namespace=names["release"])
    certificate = yaml.safe_load(yaml.safe_dump(next(o for o in objects if o["kind"] == "Certificate")))
    certificate["spec"]["privateKey"]["algorithm"] = "DSA"
    answer = api.apply(certificate, dry_run=True)
    assert answer.status_code >= 400 and "spec.privateKey.algorithm" in answer.text, answer.text


def test_strict_validation_is_really_on(api: Api, names: dict[str, str], installed: list[Manifest]) -> None:
    """The controls for the test above: the same apiserver refuses a field that is not in the schema, and a field
    given twice, the second only because of fieldValidation=Strict."""
    deployment = next(o for o in installed if o["kind"] == "Deployment")
    bogus = yaml.safe_load(yaml.safe_dump(deployment))
    bogus["metadata"]["name"] = "bogus"
    bogus["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["path"] = "/healthz"  # belongs in httpGet
    answer = api.apply(bogus, dry_run=True)
    assert answer.status_code >= 400, answer.text
    assert "livenessProbe.path: field not declared in schema" in answer.text, answer.text
    bogus["spec"]["template"]["spec"]["containers"][0]["livenessProbe"].pop("path")
    text = re.sub(r"^( *)replicas: 1\n", r"\1replicas: 1\n\1replicas: 2\n", yaml.safe_dump(bogus), count=1, flags=re.M)
    assert text.count("replicas:") == 2
    refused = api.apply(bogus, dry_run=True, text=text)
    assert refused.status_code == 400 and "already set in map" in refused.text, refused.text
    assert api.apply(bogus, dry_run=True, text=text, validation="Ignore").status_code in (200, 201)


# ------------------------------------------------------------------------------------------------ pod security


def test_the_operator_pod_is_admitted_under_restricted(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    """No kubelet runs here, so the pod stays Pending; that it exists at all means PodSecurity admitted it."""
    deployment = next(o for o in installed if o["kind"] == "Deployment")
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    deadline = time.monotonic() + 90
    pods: list[Manifest] = []
    while not pods and time.monotonic() < deadline:
        listing = api.client.get(f"/api/v1/namespaces/{names['release']}/pods", params={"labelSelector": selector})
        pods = listing.json()["items"]
        time.sleep(0.5)
    if not pods:
        events = api.client.get(f"/api/v1/namespaces/{names['release']}/events").json()["items"]
        pytest.fail("no operator pod within 90 s; events: " + "; ".join(e.get("message", "") for e in events))
    # The control: the same pod without the chart's securityContext is refused in that namespace.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unrestricted", "namespace": names["release"]},
        "spec": {"containers": [{"name": "c", "image": pods[0]["spec"]["containers"][0]["image"]}]},
    }
    refused = api.apply(pod, dry_run=True)
    assert refused.status_code == 403 and "restricted" in refused.text, refused.text
    # And a Deployment whose pod template lacks it is accepted with a warning, which is what the strict test's
    # "no warning" assertion would have caught.
    loose = yaml.safe_load(yaml.safe_dump(deployment))
    loose["metadata"]["name"] = "loose"
    loose["spec"]["template"]["spec"].pop("securityContext")
    loose["spec"]["template"]["spec"]["containers"][0].pop("securityContext")
    warned = api.apply(loose, dry_run=True)
    assert warned.status_code in (200, 201) and "restricted" in warned.headers.get("warning", ""), warned.headers


# ------------------------------------------------------------------------------------------------ authorization


def test_the_operator_may_do_what_the_chart_grants_in_watched_namespaces(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    operator = f"{names['release']}/flinkops"
    assert api.allowed(operator, names["team_a"], "patch", "flink.apache.org", "flinkdeployments/status")
    for namespace in (names["team_a"], names["team_b"]):
        for (group, resource), verbs in OPERATOR_RULES.items():
            for verb in VERBS:
                expected = verb in verbs
                got = api.allowed(operator, namespace, verb, group, resource)
                assert got == expected, f"{verb} {group}/{resource} in {namespace}: allowed={got}"


def test_the_operator_reaches_no_secrets_and_no_unwatched_namespace(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    operator = f"{names['release']}/flinkops"
    for namespace in (names["team_a"], names["team_b"], names["release"], names["unwatched"], ""):
        for verb in ("get", "list", "watch"):
            assert not api.allowed(operator, namespace, verb, "", "secrets"), f"{verb} secrets in {namespace!r}"
    for (group, resource), verbs in OPERATOR_RULES.items():
        for verb in verbs:
            assert not api.allowed(operator, names["unwatched"], verb, group, resource), f"{verb} {resource}"
            # Nor cluster-wide (a list or watch across all namespaces).
            assert not api.allowed(operator, "", verb, group, resource), f"cluster-wide {verb} {resource}"
    # The release namespace is not watched here: only its Lease is reachable.
    assert not api.allowed(operator, names["release"], "list", "flink.apache.org", "flinkdeployments")


def test_leader_election_reaches_only_the_releases_lease(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    operator, release = f"{names['release']}/flinkops", names["release"]
    lease = {"name": "flinkops-leader"}
    assert api.allowed(operator, release, "create", "coordination.k8s.io", "leases")
    assert api.allowed(operator, release, "get", "coordination.k8s.io", "leases", **lease)
    assert api.allowed(operator, release, "update", "coordination.k8s.io", "leases", **lease)
    assert not api.allowed(operator, release, "update", "coordination.k8s.io", "leases", name="someone-elses")
    assert not api.allowed(operator, release, "delete", "coordination.k8s.io", "leases", **lease)
    assert not api.allowed(operator, names["team_a"], "create", "coordination.k8s.io", "leases")


def test_flinks_job_account_may_do_what_flink_needs_and_nothing_else(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    for namespace in (names["team_a"], names["team_b"]):
        flink = f"{namespace}/flink"
        for (group, resource), verbs in JOB_RULES.items():
            for verb in VERBS:
                expected = verb in verbs
                assert api.allowed(flink, namespace, verb, group, resource) == expected, f"{verb} {resource}"
        assert not api.allowed(flink, namespace, "get", "", "secrets")
        assert not api.allowed(flink, namespace, "update", "flink.apache.org", "flinkdeployments")
        assert not api.allowed(flink, names["unwatched"], "get", "", "configmaps")


def test_a_job_releases_own_account_gets_the_namespaces_job_role_and_nothing_more(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    """A job release of the library chart (deploy/helm/flink-job-example) in a watched namespace: its own
    ServiceAccount, bound by its RoleBinding to the job Role the operator chart made there, may do exactly what
    Flink's job account may (JOB_RULES), no more; the same release in an unwatched namespace (no job Role there)
    gets nothing."""
    example = CHART.parent / "flink-job-example"
    for namespace, granted in ((names["team_a"], True), (names["unwatched"], False)):
        text = helm("template", "orders", str(example), "--namespace", namespace)
        rbac = [d for _, d in documents_of(text) if d["kind"] in ("ServiceAccount", "RoleBinding")]
        assert sorted(d["kind"] for d in rbac) == ["RoleBinding", "ServiceAccount"], rbac
        for obj in rbac:
            applied = api.apply(obj, dry_run=False)
            assert applied.status_code in (200, 201), f"{obj['kind']}/{obj['metadata']['name']}: {applied.text}"
        (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
        job = f"{namespace}/{account}"
        # The binding reaches the authorizer through its watch: wait for one right it grants, then ask for each
        # (in the unwatched namespace there is no Role to bind to: nothing to wait for).
        assert not granted or api.eventually_allowed(job, namespace, "get", "", "configmaps"), job
        for (group, resource), verbs in JOB_RULES.items():
            for verb in VERBS:
                expected = granted and verb in verbs
                assert api.allowed(job, namespace, verb, group, resource) == expected, f"{job}: {verb} {resource}"
        assert not api.allowed(job, namespace, "get", "", "secrets")
        assert not api.allowed(job, namespace, "update", "flink.apache.org", "flinkdeployments")
        assert not api.allowed(job, names["team_b"], "get", "", "configmaps")  # its binding is per namespace


def test_watch_all_namespaces_reaches_every_namespace_but_no_secrets(api: Api, names: dict[str, str]) -> None:
    release = names["all_release"]
    api.create_namespace(release)
    objects = render({"watchAllNamespaces": True}, release="flinkops-all", namespace=release)
    cluster_scoped = [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    assert len(cluster_scoped) == 2
    try:
        for obj in objects:
            if obj["kind"] in {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}:
                applied = api.apply(obj, dry_run=False)
                assert applied.status_code in (200, 201), applied.text
        operator = f"{release}/flinkops-all"
        anywhere = f"anywhere-{uuid.uuid4().hex[:6]}"  # need not exist: authorization does not look
        # The authorizer learns of new RBAC objects from its watch, a moment after they are stored.
        granted = api.eventually_allowed(operator, anywhere, "patch", "flink.apache.org", "flinkdeployments/status")
        assert granted, "the ClusterRole lets the operator patch status in any namespace"
        assert api.allowed(operator, "", "watch", "flink.apache.org", "flinkdeployments")
        for namespace in (anywhere, release, ""):
            assert not api.allowed(operator, namespace, "get", "", "secrets")
            assert not api.allowed(operator, namespace, "list", "", "secrets")
    finally:
        for obj in cluster_scoped:
            api.client.delete(api.path(obj))
        api.client.delete(f"/api/v1/namespaces/{release}")


# ------------------------------------------------------------------------------------------------ as deployed

# Imported by Python at startup from PYTHONPATH: the operator image has no pyflink, so neither has this run.
_NO_PYFLINK = """
import importlib.abc, sys
class _NoFlink(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyflink" or name.startswith("pyflink."):
            raise ImportError("pyflink is not in the operator image")
        return None
sys.meta_path.insert(0, _NoFlink())
"""


def test_the_operator_runs_as_the_chart_deploys_it(
    kube: KubeCluster, api: Api, names: dict[str, str], installed: list[Manifest], tmp_path: Path
) -> None:
    port = free_port()  # the chart's port, moved off 8085 so that nothing else on the machine is in the way
    values = {"watchNamespaces": [names["team_a"], names["team_b"]], "httpPort": port}
    deployment = next(o for o in render(values, namespace=names["release"]) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pod_name = f"flinkops-{uuid.uuid4().hex[:5]}"
    downward = {"metadata.namespace": names["release"], "metadata.name": pod_name}
    # /tmp stands for the pod's emptyDir: the only writable path there.
    writable = tmp_path / "tmp"
    writable.mkdir()
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "valueFrom" in entry:
            env[entry["name"]] = downward[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[entry["name"]] = str(entry["value"]).replace("/tmp", str(writable))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_PYFLINK)
    kubeconfig = service_account_kubeconfig(
        api.client, kube.server, kube.ca_file, names["release"], pod["serviceAccountName"], tmp_path / "kubeconfig"
    )
    # In a pod the client would use the mounted token; outside one, the same token comes from a kubeconfig.
    env.update(PATH=os.environ["PATH"], KUBECONFIG=str(kubeconfig), PYTHONPATH=str(site))
    scripts = Path(os.environ.get("VIRTUAL_ENV") or Path(__file__).resolve().parents[2] / ".venv") / "bin"
    argv = [str(scripts / container["command"][0]), *container["command"][1:], *container["args"]]
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=writable)
    try:
        probe = container["readinessProbe"]["httpGet"]["path"]

        def ready() -> bool:
            assert proc.poll() is None, f"the operator exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200
            return False

        wait_for(f"the operator's {probe}", ready, timeout=60)
        lease_name = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--lease-name="))
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{names['release']}/leases/{lease_name}"

        def holder() -> str | None:
            got = api.client.get(lease_path)
            return str(got.json()["spec"].get("holderIdentity")) if got.status_code == 200 else None

        assert wait_for("the Lease", holder, timeout=30) == pod_name
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text[-4000:]
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), text[-4000:]
    # The chart's RBAC covered everything the operator did: the apiserver refused nothing.
    assert "forbidden" not in text.lower(), text[-4000:]


def _apply_gateway(api: Api, names: dict[str, str], values: dict[str, Any]) -> list[Manifest]:
    """The chart's gateway objects (watching team-a and team-b), applied for real beside the installed operator."""
    objects = render(
        {"watchNamespaces": [names["team_a"], names["team_b"]], "gateway": values},
        release="flinkops",
        namespace=names["release"],
    )
    gateway = [o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"]
    for obj in gateway:
        applied = api.apply(obj, dry_run=False)
        assert applied.status_code in (200, 201), f"{obj['kind']}/{obj['metadata']['name']}: {applied.text}"
    return gateway


def test_the_gateway_may_read_flink_resources_in_watched_namespaces_and_nothing_else(
    api: Api, names: dict[str, str], installed: list[Manifest]
) -> None:
    _apply_gateway(api, names, GATEWAY_VALUES)
    gateway = f"{names['release']}/flinkops-gateway"
    assert api.eventually_allowed(gateway, names["team_a"], "list", "flink.apache.org", "flinkdeployments")
    for namespace in (names["team_a"], names["team_b"]):
        for verb in VERBS:
            expected = verb in {"get", "list", "watch"}
            for resource in ("flinkdeployments", "flinksessionjobs"):  # what it proxies, what its fleet page lists
                got = api.allowed(gateway, namespace, verb, "flink.apache.org", resource)
                assert got == expected, f"{verb} {resource} in {namespace}: allowed={got}"
        for group, resource in (
            ("flink.apache.org", "flinkdeployments/status"),
            ("flink.apache.org", "flinksessionjobs/status"),
            ("", "secrets"),
            ("", "pods"),
            ("", "services"),
        ):
            for verb in ("get", "list", "update"):
                assert not api.allowed(gateway, namespace, verb, group, resource), f"{verb} {resource} in {namespace}"
    for namespace in (names["unwatched"], names["release"], ""):
        for verb in ("get", "list", "watch"):
            assert not api.allowed(gateway, namespace, verb, "flink.apache.org", "flinkdeployments"), namespace
            assert not api.allowed(gateway, namespace, verb, "", "secrets"), namespace


def test_the_gateway_runs_as_the_chart_deploys_it(
    kube: KubeCluster, api: Api, names: dict[str, str], installed: list[Manifest], tmp_path: Path
) -> None:
    """The chart's gateway settings, command, environment and ServiceAccount (its token in a kubeconfig instead of
    the pod's mount, the Secrets' files in a directory instead of the projected volume, 127.0.0.1 and a free port
    instead of 0.0.0.0:8443): it serves a watched namespace's deployment, says 404 for an unwatched one without
    the API server refusing anything, and writes its audit lines to stdout (kubectl logs)."""
    from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, JobSpec, ObjectMeta
    from flinkops.service.target import KubernetesTarget
    from support.gateway import counting_upstream, pki
    from support.gateway_corpus import tls

    gateway = _apply_gateway(api, names, GATEWAY_VALUES)
    (deployment,) = [o for o in gateway if o["kind"] == "Deployment"]
    (config_map,) = [o for o in gateway if o["kind"] == "ConfigMap"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # PodSecurity "restricted" admits the gateway's pod (no kubelet here: it stays Pending).
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())

    def admitted() -> list[Manifest]:
        listing = api.client.get(f"/api/v1/namespaces/{names['release']}/pods", params={"labelSelector": selector})
        return list(listing.json()["items"])

    wait_for("the gateway's pod", admitted, timeout=90)

    # The mounted directory: gateway.yaml as the ConfigMap has it, the TLS Secret's keys under tls/.
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "settings")
    local = tmp_path / "settings"
    ca = pki(tmp_path / "pki")
    (local / "tls").mkdir(parents=True)
    for key, source in (("tls.crt", ca.server_cert), ("tls.key", ca.server_key), ("ca.crt", ca.ca_file)):
        (local / "tls" / key).write_bytes(source.read_bytes())
    port = free_port()
    text = config_map["data"]["gateway.yaml"].replace(mount, str(local))
    assert "0.0.0.0:8443" in text
    (local / "gateway.yaml").write_text(text.replace("0.0.0.0:8443", f"127.0.0.1:{port}"))
    config = container["command"][container["command"].index("--config") + 1]
    assert config == f"{mount}/gateway.yaml"

    writable = tmp_path / "tmp"
    writable.mkdir()
    env = {e["name"]: str(e["value"]).replace("/tmp", str(writable)) for e in container["env"] if "value" in e}
    env["POD_NAME"] = "flinkops-gateway-test"
    assert env["FLINKOPS_TARGET"] == "kubernetes"
    kubeconfig = service_account_kubeconfig(
        api.client, kube.server, kube.ca_file, names["release"], pod["serviceAccountName"], tmp_path / "kubeconfig"
    )
    repo = Path(__file__).resolve().parents[2]
    env.update(PATH=os.environ["PATH"], KUBECONFIG=str(kubeconfig), PYTHONPATH=str(repo / "src"))
    assert container["command"][:3] == ["flinkops", "gateway", "run"]
    argv = [sys.executable, "-m", "flinkops", *container["command"][1:-1], str(local / "gateway.yaml")]

    store = KubernetesTarget(kubeconfig=str(kube.kubeconfig)).store()
    log = tmp_path / "gateway.log"
    with counting_upstream() as upstream:
        for namespace, name in ((names["team_a"], "orders"), (names["unwatched"], "hidden")):
            stored = store.apply(
                FlinkDeployment(
                    metadata=ObjectMeta(name=name, namespace=namespace),
                    spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar", parallelism=1)),
                )
            )
            status = FlinkDeploymentStatus(cluster_info={"rest-url": upstream.url})
            store.update_status(stored.model_copy(update={"status": status}))
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=writable)
        try:
            cert = ca.client("ci.example")
            with httpx.Client(verify=tls(ca, cert), timeout=10) as http:
                base = f"https://127.0.0.1:{port}"

                def serving() -> bool:
                    assert proc.poll() is None, f"the gateway exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
                    with contextlib.suppress(httpx.HTTPError):
                        return http.get(f"{base}/").status_code == 200
                    return False

                wait_for("the gateway", serving, timeout=60)
                index = http.get(f"{base}/").text
                assert f"{names['team_a']}/orders" in index and "hidden" not in index
                through = http.get(f"{base}/{names['team_a']}/orders/jobs/overview")
                assert through.status_code == 200, through.text
                assert http.get(f"{base}/{names['unwatched']}/hidden/jobs/overview").status_code == 404
                assert [p for _, p, _ in upstream.seen] == ["/jobs/overview"]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text[-4000:]
    # The audit log is the container's stdout: one JSON line per request, among the gateway's own log lines.
    audit = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(a.get("name") == "orders" and a.get("status") == 200 for a in audit), text[-4000:]
    assert "forbidden" not in text.lower(), text[-4000:]
