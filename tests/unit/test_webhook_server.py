"""The admission webhook's HTTPS server and its own certificates (``wiring.webhook``), without an API server: a
client that trusts only the webhook's CA gets the verdict over TLS; a body that is no AdmissionReview is a 400;
a renewed certificate is served from the next connection; the Secret-kept certificates are made once, shared by
replicas, renewed before they expire under a CA that stays trusted, and their CA lands in the webhook
configuration's caBundle. The Secret and configuration live in a small in-memory stand-in for the API server
(the real one is in tests/kubernetes/test_webhook_live.py)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from flinkops.errors import Conflict
from flinkops.wiring.webhook import (
    FileCertificates,
    Pair,
    SecretCertificates,
    WebhookServer,
    WebhookSettings,
    make_ca,
    make_serving,
    service_names,
    webhook_settings_from_env,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u-1",
        "operation": "CREATE",
        "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
        "namespace": "jobs",
        "object": {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "Bad_Name", "namespace": "jobs"},
            "spec": {"image": "flink:2.2", "flinkVersion": "v2_2", "serviceAccount": "flink"},
        },
    },
}


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[WebhookServer, Path]]:
    ca = make_ca(dt.datetime.now(dt.UTC))
    leaf = make_serving(ca, ["127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp_path / "tls.crt").write_bytes(leaf.cert)
    (tmp_path / "tls.key").write_bytes(leaf.key)
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    server = WebhookServer(FileCertificates(tmp_path), "127.0.0.1", 0, reload=3600).start()
    yield server, tmp_path
    server.stop()


def test_a_review_is_answered_over_tls_to_a_client_that_trusts_only_the_ca(
    served: tuple[WebhookServer, Path],
) -> None:
    server, directory = served
    with httpx.Client(verify=trusting(directory / "ca.crt")) as client:
        answer = client.post(f"https://127.0.0.1:{server.port}/validate", json=REVIEW)

    assert answer.status_code == 200
    response = answer.json()["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is False
    assert "metadata.name" in response["status"]["message"]


def test_a_body_that_is_no_admission_review_is_a_bad_request(served: tuple[WebhookServer, Path]) -> None:
    server, directory = served
    with httpx.Client(verify=trusting(directory / "ca.crt")) as client:
        answer = client.post(f"https://127.0.0.1:{server.port}/validate", content=b"{}")
        missing = client.post(f"https://127.0.0.1:{server.port}/convert", json=REVIEW)
        defaulted = client.post(f"https://127.0.0.1:{server.port}/mutate", json=REVIEW)

    assert answer.status_code == 400
    assert "AdmissionReview" in answer.json()["error"]
    assert missing.status_code == 404
    assert defaulted.json()["response"] == {"uid": "u-1", "allowed": True}  # nothing to default on a deployment


def test_a_renewed_certificate_is_served_from_the_next_connection(served: tuple[WebhookServer, Path]) -> None:
    server, directory = served
    other_ca = make_ca(dt.datetime.now(dt.UTC), "another-ca")
    leaf = make_serving(other_ca, ["127.0.0.1"], dt.datetime.now(dt.UTC))
    (directory / "tls.crt").write_bytes(leaf.cert)
    (directory / "tls.key").write_bytes(leaf.key)
    (directory / "other.crt").write_bytes(other_ca.cert)

    server.refresh()

    with httpx.Client(verify=trusting(directory / "other.crt")) as client:
        assert client.post(f"https://127.0.0.1:{server.port}/validate", json=REVIEW).status_code == 200
    with httpx.Client(verify=trusting(directory / "ca.crt")) as client, pytest.raises(httpx.ConnectError):
        client.post(f"https://127.0.0.1:{server.port}/validate", json=REVIEW)


# ------------------------------------------------------------------------------- certificates in a Secret


class FakeApi:
    """Secrets and webhook configurations by path, with resourceVersion preconditions as the API server has."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0

    def _stored(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def get(self, path: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get(path))

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        full = f"{path}/{body['metadata']['name']}"
        if full in self.objects:
            raise Conflict("already exists")
        return self._stored(full, body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.objects[path]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise Conflict("changed")
        return self._stored(path, body)

    def patch(self, path: str, ops: list[dict[str, Any]], *, kind: str) -> dict[str, Any]:
        assert kind == "json"
        obj = copy.deepcopy(self.objects[path])
        for op in ops:
            parts = op["path"].strip("/").split("/")
            if op["op"] == "test":
                if obj["metadata"]["resourceVersion"] != op["value"]:
                    raise Conflict("test failed")
                continue
            node: Any = obj
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            node[parts[-1]] = op["value"]
        return self._stored(path, obj)


SECRET = "/api/v1/namespaces/flinkops/secrets/flinkops-webhook-tls"
CONFIG = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/flinkops"


def secret_certs(
    api: FakeApi, when: list[dt.datetime], names: list[str] | None = None, *, mutating: bool = True
) -> SecretCertificates:
    return SecretCertificates(
        api,  # type: ignore[arg-type]
        "flinkops",
        "flinkops-webhook-tls",
        names or service_names("flinkops-webhook", "flinkops"),
        "flinkops",
        now=lambda: when[0],
        mutating=mutating,
    )


def stored_ca(api: FakeApi) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(base64.b64decode(api.objects[SECRET]["data"]["ca.crt"]))


def with_config(api: FakeApi) -> FakeApi:
    hooks = [{"name": n, "clientConfig": {"service": {"name": "flinkops-webhook"}}} for n in ("a.flink", "b.flink")]
    api.objects[CONFIG] = {"metadata": {"name": "flinkops", "resourceVersion": "0"}, "webhooks": hooks}
    return api


def served_now_and_after(api: FakeApi, later: dt.timedelta) -> tuple[Pair, Pair]:
    """The pair a replica serves at NOW, and the one a replica serves ``later`` from the same Secret."""
    when = [NOW]
    first = secret_certs(api, when).serving()
    when[0] = NOW + later
    return first, secret_certs(api, when).serving()


def test_the_first_replica_makes_the_certificates_and_the_next_one_reuses_them() -> None:
    api = with_config(FakeApi())
    when = [NOW]

    first = secret_certs(api, when).serving()
    second = secret_certs(api, when).serving()

    assert first == second
    leaf = x509.load_pem_x509_certificate(first.cert)
    alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "flinkops-webhook.flinkops.svc" in alt.get_values_for_type(x509.DNSName)
    (ca,) = stored_ca(api)
    leaf.verify_directly_issued_by(ca)
    bundle = base64.b64encode(ca.public_bytes(encoding=_pem())).decode()
    assert [h["clientConfig"]["caBundle"] for h in api.objects[CONFIG]["webhooks"]] == [bundle, bundle]


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def test_the_serving_certificate_is_renewed_before_it_expires_under_the_same_ca() -> None:
    api = with_config(FakeApi())
    # a 365-day certificate with less than a third of its life left
    first, renewed = served_now_and_after(api, dt.timedelta(days=250))

    assert renewed != first
    old, new = (x509.load_pem_x509_certificate(p.cert) for p in (first, renewed))
    assert new.not_valid_after_utc > old.not_valid_after_utc
    (ca,) = stored_ca(api)
    new.verify_directly_issued_by(ca)


def test_a_renewed_ca_keeps_the_old_one_trusted_until_it_expires() -> None:
    api = with_config(FakeApi())
    # the 10-year CA has less than a third of its life left
    first, renewed = served_now_and_after(api, dt.timedelta(days=2500))

    new_ca, old_ca = stored_ca(api)
    x509.load_pem_x509_certificate(renewed.cert).verify_directly_issued_by(new_ca)
    x509.load_pem_x509_certificate(first.cert).verify_directly_issued_by(old_ca)
    bundle = base64.b64decode(api.objects[CONFIG]["webhooks"][0]["clientConfig"]["caBundle"])
    assert len(x509.load_pem_x509_certificates(bundle)) == 2


def test_new_service_names_get_a_new_certificate() -> None:
    api = FakeApi()
    when = [NOW]
    secret_certs(api, when).serving()

    renewed = secret_certs(api, when, ["flinkops-webhook.other.svc", "127.0.0.1"]).serving()

    alt = x509.load_pem_x509_certificate(renewed.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in alt.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_no_secret_no_config_and_a_lost_race_still_give_one_shared_pair() -> None:
    api = FakeApi()
    when = [NOW]
    certs = secret_certs(api, when)
    winner = secret_certs(api, when)
    original_get = api.get
    raced = []

    def get(path: str) -> dict[str, Any] | None:
        seen = original_get(path)
        if path == SECRET and not raced:
            raced.append(True)
            winner.serving()  # another replica creates the Secret between our read and our create
        return seen

    api.get = get  # type: ignore[method-assign]

    assert certs.serving() == winner.serving()
    assert api.objects[SECRET]["type"] == "Opaque"


def test_the_chart_environment_turns_the_webhook_on_and_names_its_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLINKOPS_WEBHOOK_PORT", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert webhook_settings_from_env("ops") is None
    assert webhook_settings_from_env("ops", 0) is None

    monkeypatch.setenv("FLINKOPS_WEBHOOK_PORT", "9443")
    monkeypatch.setenv("FLINKOPS_WEBHOOK_SECRET", "r-flinkops-webhook-tls")
    monkeypatch.setenv("FLINKOPS_WEBHOOK_CONFIG", "r-flinkops-ops")
    settings = webhook_settings_from_env("ops")

    assert settings is not None
    assert (settings.port, settings.address, settings.namespace) == (9443, "127.0.0.1", "ops")
    assert (settings.secret, settings.config, settings.cert_dir) == ("r-flinkops-webhook-tls", "r-flinkops-ops", "")
    assert settings.mutating
    monkeypatch.setenv("FLINKOPS_WEBHOOK_MUTATING", "false")
    assert webhook_settings_from_env("ops").mutating is False  # type: ignore[union-attr]
    monkeypatch.delenv("FLINKOPS_WEBHOOK_MUTATING")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # in a pod: the API server reaches the pod IP
    assert webhook_settings_from_env("ops", 8443) == WebhookSettings(
        port=8443,
        address="0.0.0.0",
        namespace="ops",
        secret="r-flinkops-webhook-tls",
        config="r-flinkops-ops",
    )


def test_without_the_defaulting_webhook_its_configuration_is_never_read() -> None:
    """``webhook.mutating=false``: the chart installs no MutatingWebhookConfiguration and grants no right on one, so
    the operator must not ask for it (a 403 every minute on every replica); with it, its caBundle is kept too."""
    read: list[str] = []

    class Recording(FakeApi):
        def get(self, path: str) -> dict[str, Any] | None:
            read.append(path)
            return super().get(path)

    api = with_config(Recording())
    secret_certs(api, [NOW], mutating=False).serving()
    assert read and not any("mutatingwebhookconfigurations" in path for path in read), read
    read.clear()
    secret_certs(api, [NOW]).serving()
    assert any("mutatingwebhookconfigurations" in path for path in read), read
