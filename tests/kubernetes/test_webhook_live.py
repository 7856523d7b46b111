"""The admission webhook on a real kube-apiserver: the API server calls the webhook (running in this test process on
127.0.0.1 over TLS, with the certificates it made itself in a Secret and the CA it patched into the
ValidatingWebhookConfiguration), and a server-side apply of a bad FlinkDeployment is refused with the field path,
by the CRD schema (wrong types, unknown fields under strict field validation, bad enums) or by the webhook
(flinkops' own rules: invalid names, savepoint upgrades without a savepoint directory, a literal S3 secret key).
Valid resources and every seed's YAML pass, lint warnings reach the client as ``Warning`` headers, and with the
webhook stopped a delete still works (DELETE is not in the rules) while a create is refused (failurePolicy Fail).
Last, ``flinkops operator run`` with the chart's environment and ServiceAccount makes its certificate and sets the
caBundle with the chart's RBAC alone.

The configuration's namespaceSelector matches only this module's namespace, so the other tests on the same API
server never reach the webhook; it is deleted at the end. No node is needed.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import ssl
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
from flinkops.kube.client import KubeClient, load_config
from flinkops.wiring.webhook import SecretCertificates, WebhookServer, api_lookup
from support.admission_specs import url_webhook_configuration, valid_deployment
from support.helm import render
from support.kube import KubeCluster, install_crds
from support.operator import service_account_kubeconfig, wait_for

pytestmark = pytest.mark.integration

API = "/apis/flink.apache.org/v1beta1"
PLURAL = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}
SEEDS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "seeds").rglob("*.yaml"))
CONFIG_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"

GOOD: dict[str, Any] = valid_deployment()


def configuration(name: str, namespace: str, port: int) -> dict[str, Any]:
    """What the chart installs, with a URL client config (no Service: the webhook runs on this host)."""
    return url_webhook_configuration(name, namespace, port)


def defaulting(name: str, namespace: str, port: int) -> dict[str, Any]:
    """The chart's MutatingWebhookConfiguration, with the same URL client config."""
    (hook,) = configuration(name, namespace, port)["webhooks"]
    hook = {
        **hook,
        "name": "mutate.flinkops.flink.apache.org",
        "failurePolicy": "Ignore",
        "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate"},
        "rules": [{**hook["rules"][0], "resources": ["flinksessionjobs"]}],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [hook],
    }


MUTATING_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


class Webhooked:
    def __init__(self, api: httpx.Client, namespace: str, server: WebhookServer) -> None:
        self.api = api
        self.namespace = namespace
        self.server = server

    def apply(self, document: dict[str, Any]) -> httpx.Response:
        """A server-side apply as ``kubectl apply --server-side`` sends it (strict field validation)."""
        body = copy.deepcopy(document)
        body["metadata"] = {**body["metadata"], "namespace": self.namespace}
        kind, name = body["kind"], body["metadata"]["name"]
        return self.api.patch(
            f"{API}/namespaces/{self.namespace}/{PLURAL[kind]}/{name}",
            content=json.dumps(body),
            params={"fieldManager": "kubectl", "force": "true", "fieldValidation": "Strict"},
            headers={"Content-Type": "application/apply-patch+yaml"},
        )


@pytest.fixture(scope="module")
def hooked(kube: KubeCluster) -> Iterator[Webhooked]:
    namespace = f"webhook-{uuid.uuid4().hex[:8]}"
    name = f"flinkops-test-{namespace}"
    with kube.client() as api, KubeClient(load_config(kubeconfig=str(kube.kubeconfig))) as client:
        install_crds(api)
        assert api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
        certs = SecretCertificates(client, namespace, "flinkops-webhook-tls", ["127.0.0.1"], name)
        server = WebhookServer(certs, "127.0.0.1", 0, lookup=api_lookup(client), reload=3600).start()
        try:
            created = api.post(CONFIG_PATH, json=configuration(name, namespace, server.port))
            assert created.status_code == 201, created.text
            created = api.post(MUTATING_PATH, json=defaulting(name, namespace, server.port))
            assert created.status_code == 201, created.text
            server.refresh()  # the CA goes into the configuration that now exists
            hooked = Webhooked(api, namespace, server)
            bad = copy.deepcopy(GOOD)
            bad["metadata"] = {"name": "not.a.flink.name"}
            deadline = time.monotonic() + 20  # the API server picks a new configuration up within a second or so
            while "denied the request" not in (last := hooked.apply(bad)).text:
                assert time.monotonic() < deadline, f"the API server never called the webhook: {last.text}"
                time.sleep(0.1)
            yield hooked
        finally:
            server.stop()
            api.delete(f"{CONFIG_PATH}/{name}")
            api.delete(f"{MUTATING_PATH}/{name}")
            api.delete(f"/api/v1/namespaces/{namespace}")


def test_the_ca_it_made_is_in_the_configurations(hooked: Webhooked) -> None:
    name = f"flinkops-test-{hooked.namespace}"
    (hook,) = hooked.api.get(f"{CONFIG_PATH}/{name}").json()["webhooks"]
    (defaulting_hook,) = hooked.api.get(f"{MUTATING_PATH}/{name}").json()["webhooks"]
    secret = hooked.api.get(f"/api/v1/namespaces/{hooked.namespace}/secrets/flinkops-webhook-tls").json()

    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert defaulting_hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert set(secret["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}


def _set(document: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node = changed
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return changed


_SECRET = {**GOOD["spec"]["flinkConfiguration"], "s3.secret-key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"}


@pytest.mark.parametrize(
    ("change", "value", "field", "by_webhook"),
    [
        ("spec.job.parallelism", "four", "spec.job.parallelism", False),
        ("spec.jobManger", {"replicas": 1}, "spec.jobManger", False),
        ("spec.job.upgradeMode", "latest", "spec.job.upgradeMode", False),
        ("metadata.name", "Fraud_Scoring", "metadata.name", False),
        ("metadata.name", "fraud.scoring", "metadata.name", True),
        ("metadata.name", "f" * 46, "metadata.name", True),
        ("spec.flinkConfiguration", {"state.checkpoints.dir": "s3://state/cp"}, "spec.job.upgradeMode", True),
        ("spec.flinkConfiguration", _SECRET, 'spec.flinkConfiguration["s3.secret-key"]', True),
    ],
    ids=[
        "wrong-type",
        "unknown-field",
        "bad-enum",
        "invalid-name-for-kubernetes",
        "invalid-name-for-flink",
        "name-too-long-for-flink",
        "savepoint-without-dir",
        "literal-secret",
    ],
)
def test_a_bad_deployment_is_refused_by_the_api_server_with_the_field_path(
    hooked: Webhooked, change: str, value: Any, field: str, by_webhook: bool
) -> None:
    answer = hooked.apply(_set(GOOD, change, value))

    # 400/422 from a create's validation; server-side apply reports a value the schema cannot type as a 500
    # ("failed to create typed patch object"), as kubectl shows it, with the path all the same.
    assert answer.status_code in (400, 422, 500), answer.text
    message = answer.json()["message"]
    assert field in message, message
    assert ("denied the request" in message) is by_webhook, message
    assert "wJalrXUtnFEMI" not in answer.text


def test_a_valid_deployment_passes_and_a_lint_warning_reaches_the_client(hooked: Webhooked) -> None:
    quiet = _set(GOOD, "metadata.name", "fraud-ok")
    noisy = _set(GOOD, "metadata.name", "fraud-warned")
    del noisy["spec"]["flinkConfiguration"]["execution.checkpointing.externalized-checkpoint-retention"]

    assert hooked.apply(quiet).status_code in (200, 201)
    warned = hooked.apply(noisy)

    assert warned.status_code in (200, 201), warned.text
    assert "FO007" in warned.headers.get("Warning", "")


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_every_seed_passes(hooked: Webhooked, path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") in PLURAL:
            answer = hooked.apply(json.loads(json.dumps(document, default=str)))
            assert answer.status_code in (200, 201), answer.text


def test_a_session_job_is_stored_with_its_target_session_label(hooked: Webhooked) -> None:
    job = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": "ingest", "labels": {"team": "data"}},
        "spec": {"deploymentName": "basic-session-cluster"},
    }

    answer = hooked.apply(job)

    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["metadata"]["labels"] == {"team": "data", "target.session": "basic-session-cluster"}


def test_an_update_to_a_forbidden_change_is_refused(hooked: Webhooked) -> None:
    created = _set(GOOD, "metadata.name", "fraud-mode")
    assert hooked.apply(created).status_code in (200, 201)

    answer = hooked.apply(_set(created, "spec.mode", "standalone"))

    assert answer.status_code == 422, answer.text
    assert "spec.mode" in answer.json()["message"]


def test_with_the_webhook_down_a_delete_works_and_a_create_is_refused(hooked: Webhooked) -> None:
    kept = _set(GOOD, "metadata.name", "fraud-delete")
    assert hooked.apply(kept).status_code in (200, 201)

    hooked.server.stop()

    deleted = hooked.api.delete(f"{API}/namespaces/{hooked.namespace}/flinkdeployments/fraud-delete")
    assert deleted.status_code == 200, deleted.text
    refused = hooked.apply(_set(GOOD, "metadata.name", "fraud-new"))
    assert refused.status_code == 500, refused.text
    assert "failed calling webhook" in refused.json()["message"]


# ------------------------------------------------------------------------- the operator, as the chart runs it

_PLURALS = {
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    "ValidatingWebhookConfiguration": ("/apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations"),
    "MutatingWebhookConfiguration": ("/apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations"),
}


def _path(obj: dict[str, Any]) -> str:
    base, plural = _PLURALS[obj["kind"]]
    namespace = obj["metadata"].get("namespace")
    where = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{where}/{obj['metadata']['name']}"


def test_the_operator_makes_its_certificate_with_only_the_charts_rights(kube: KubeCluster, tmp_path: Path) -> None:
    """``flinkops operator run`` with the environment and ServiceAccount the chart gives it (webhook on, no
    cert-manager): it fills the chart's empty Secret, patches the caBundle into the chart's configuration, and
    serves /validate with that certificate, all with the chart's RBAC (by resource name) and nothing more."""
    namespace = f"webhook-op-{uuid.uuid4().hex[:6]}"
    objects = render({"watchNamespaces": [namespace], "webhook": {"enabled": True}}, namespace=namespace)
    installed = [o for o in objects if o["kind"] in _PLURALS]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"] if "value" in e}
    config = next(o for o in objects if o["kind"] == "ValidatingWebhookConfiguration")
    with kube.client() as api:
        install_crds(api)
        assert api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
        try:
            for obj in installed:
                applied = api.patch(
                    _path(obj),
                    content=json.dumps(obj),
                    params={"fieldManager": "helm", "force": "true"},
                    headers={"Content-Type": "application/apply-patch+yaml"},
                )
                assert applied.status_code in (200, 201), applied.text
            kubeconfig = service_account_kubeconfig(
                api,
                kube.server,
                kube.ca_file,
                namespace,
                deployment["spec"]["template"]["spec"]["serviceAccountName"],
                tmp_path / "kubeconfig",
            )
            http_port, webhook_port = free_port(), free_port()
            env.update(
                PATH=os.environ["PATH"],
                KUBECONFIG=str(kubeconfig),
                OPERATOR_NAMESPACE=namespace,
                POD_NAME="operator-0",
                HOME=str(tmp_path),
                FLINKOPS_HOME=str(tmp_path / "flinkops"),
                FLINKOPS_WEBHOOK_PORT=str(webhook_port),
                PYTHONPATH=os.environ.get("PYTHONPATH", ""),
            )
            argv = [sys.executable, "-m", "flinkops", "operator", "run", f"--http-port={http_port}"]
            argv.append("--no-leader-election")
            log = tmp_path / "operator.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
            try:

                def patched() -> str | None:
                    assert proc.poll() is None, f"the operator exited:\n{log.read_text()[-3000:]}"
                    hooks = api.get(_path(config)).json()["webhooks"]
                    return hooks[0]["clientConfig"].get("caBundle")

                bundle = wait_for("the caBundle", patched, timeout=30)
                secret = api.get(_path(next(o for o in installed if o["kind"] == "Secret"))).json()
                assert bundle == secret["data"]["ca.crt"]
                mutating = next(o for o in installed if o["kind"] == "MutatingWebhookConfiguration")
                assert api.get(_path(mutating)).json()["webhooks"][0]["clientConfig"]["caBundle"] == bundle
                ca_file = tmp_path / "ca.crt"
                ca_file.write_bytes(base64.b64decode(bundle))
                trust = ssl.create_default_context(cafile=str(ca_file))
                trust.check_hostname = False  # the certificate names the Service; the chain is what is checked here
                review = {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "u", "operation": "DELETE", "kind": {"kind": "FlinkDeployment"}},
                }
                answer = httpx.post(f"https://127.0.0.1:{webhook_port}/validate", json=review, verify=trust)
                assert answer.json()["response"] == {"uid": "u", "allowed": True}
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        finally:
            for obj in installed:
                if not obj["metadata"].get("namespace"):
                    api.delete(_path(obj))
            api.delete(f"/api/v1/namespaces/{namespace}")
