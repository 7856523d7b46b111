"""The Kubernetes client's contract, through an httpx2 transport: kubeconfig loading, paths, the translation
of API server answers into flinkops errors (decided by status code and reason, never by message text), static
tokens, token files read again after a 401, client certificates and the in-cluster service account."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from flinkops.errors import Conflict, InvalidInput, NotFound
from flinkops.kube.client import (
    AlreadyExists,
    Expired,
    KubeClient,
    KubeCredentialsError,
    KubeForbidden,
    KubeRejected,
    KubeUnavailable,
    in_cluster_config,
    load_config,
    load_kubeconfig,
    object_path,
)
from support.kubeconfigs import self_signed, write_kubeconfig

CA = Path()  # a small self-signed CA (no TLS handshake happens over a mock transport)


@pytest.fixture(scope="module", autouse=True)
def _small_ca(tmp_path_factory: pytest.TempPathFactory) -> None:
    global CA
    CA, _ = self_signed(tmp_path_factory.mktemp("ca"))


def client(handler: Any, tmp_path: Path | None = None, user: dict[str, Any] | None = None) -> KubeClient:
    import tempfile

    where = tmp_path or Path(tempfile.mkdtemp())
    path = write_kubeconfig(where / "config", "https://api.test", user or {"token": "s3cret"}, ca_file=CA)
    return KubeClient(load_kubeconfig(path), transport=httpx.MockTransport(handler))


def status(code: int, reason: str, message: str = "no") -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "code": code, "reason": reason, "message": message})


def test_paths_for_core_and_group_resources() -> None:
    assert object_path("v1", "configmaps", "ns", "c") == "/api/v1/namespaces/ns/configmaps/c"
    assert object_path("apps/v1", "deployments", None) == "/apis/apps/v1/deployments"
    assert (
        object_path("flink.apache.org/v1beta1", "flinkdeployments", "a", "b", "status")
        == "/apis/flink.apache.org/v1beta1/namespaces/a/flinkdeployments/b/status"
    )


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Expired),
        (403, "Forbidden", KubeForbidden),
        (401, "Unauthorized", KubeForbidden),
        (422, "Invalid", KubeRejected),
        (429, "TooManyRequests", KubeUnavailable),
        (503, "ServiceUnavailable", KubeUnavailable),
    ],
)
def test_answers_become_flinkops_errors(code: int, reason: str, error: type[Exception]) -> None:
    with client(lambda request: status(code, reason)) as kube, pytest.raises(error):
        kube.create("/api/v1/namespaces/x/configmaps", {"metadata": {"name": "c"}})


def test_conflict_is_not_already_exists_and_get_of_missing_is_none() -> None:
    with client(lambda request: status(409, "Conflict")) as kube:
        with pytest.raises(Conflict) as caught:
            kube.replace("/api/v1/namespaces/x/configmaps/c", {})
        assert not isinstance(caught.value, AlreadyExists)
    with client(lambda request: status(404, "NotFound")) as kube:
        assert kube.get("/api/v1/namespaces/x/configmaps/c") is None
        assert kube.delete("/api/v1/namespaces/x/configmaps/c") is None


def test_unreachable_server_is_temporary_and_token_never_in_the_message() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(refuse) as kube, pytest.raises(KubeUnavailable) as caught:
        kube.get("/api/v1/namespaces")
        assert "s3cret" not in repr(kube) and "s3cret" not in repr(kube.config)
    assert "s3cret" not in str(caught.value)


def test_list_follows_continuation_pages_and_sends_the_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def pages(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "continue" not in request.url.params:
            return httpx.Response(200, json={"metadata": {"continue": "t1", "resourceVersion": "7"}, "items": [1]})
        return httpx.Response(200, json={"metadata": {"resourceVersion": "7"}, "items": [2]})

    with client(pages) as kube:
        assert kube.list("/api/v1/pods")["items"] == [1, 2]
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in seen)


def test_watch_yields_events_and_expired_raises() -> None:
    lines = [
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "2"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "3"}}},
        {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    with client(lambda request: httpx.Response(200, content=body)) as kube:
        got = []
        with pytest.raises(Expired):
            for kind, obj in kube.watch("/api/v1/pods", resource_version="1"):
                got.append((kind, obj["metadata"]["resourceVersion"]))
    assert got == [("ADDED", "2"), ("BOOKMARK", "3")]


def test_kubeconfig_context_selection_and_errors(tmp_path: Path) -> None:
    ca = base64.b64encode(b"not a real ca").decode()
    doc = {
        "clusters": [{"name": "c1", "cluster": {"server": "https://k:6443/", "certificate-authority-data": ca}}],
        "users": [{"name": "u1", "user": {"token": "t"}}, {"name": "u2", "user": {"exec": {"command": "aws"}}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "c1", "user": "u1", "namespace": "jobs"}},
            {"name": "plugin", "context": {"cluster": "c1", "user": "u2"}},
        ],
        "current-context": "one",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    config = load_kubeconfig(path)
    assert (config.server, config.namespace, config.context, config.user) == ("https://k:6443", "jobs", "one", "u1")
    assert config.settings.user is not None and config.settings.user.token == "t"
    assert config.settings.cluster.certificate_auth_data == ca
    with pytest.raises(InvalidInput, match="known contexts: one, plugin"):
        load_kubeconfig(path, "nope")
    # an exec user is read; its plugin is checked when a client is built from it
    plugin = load_kubeconfig(path, "plugin")
    assert plugin.exec == {"command": "aws"}
    with pytest.raises(KubeCredentialsError, match=r"users\[u2\]: the exec plugin's apiVersion ''"):
        KubeClient(plugin)


def test_malformed_kubeconfigs_are_invalid_input_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters: [ {")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_kubeconfig(path)
    path.write_text(yaml.safe_dump({"contexts": [{"name": "c", "context": {"cluster": "gone", "user": "u"}}]}))
    with pytest.raises(InvalidInput, match="'gone' is missing or has no server"):
        load_kubeconfig(path, "c")
    doc = {
        "clusters": [{"name": "k", "cluster": {"server": "https://k", "insecure-skip-tls-verify": "maybe"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidInput) as caught:
        load_kubeconfig(path, "c")
    assert str(path) in str(caught.value)
    with pytest.raises(InvalidInput, match="cannot read the kubeconfig"):
        load_kubeconfig(tmp_path / "missing")


def test_certificate_data_that_is_not_a_certificate_names_file_and_user(tmp_path: Path) -> None:
    garbage = base64.b64encode(b"not a certificate").decode()
    user = {"client-certificate-data": garbage, "client-key-data": garbage}
    path = write_kubeconfig(tmp_path / "config", "https://api.test", user, ca_file=CA, user_name="admin")
    with pytest.raises(KubeCredentialsError) as caught:
        KubeClient(load_kubeconfig(path))
    assert f"{path}: users[admin]" in str(caught.value) and garbage not in str(caught.value)


def test_client_certificate_files_relative_to_the_kubeconfig_are_loaded(tmp_path: Path) -> None:
    self_signed(tmp_path, "me")
    path = write_kubeconfig(
        tmp_path / "config", "https://api.test", {"client-certificate": "me.crt", "client-key": "me.key"}, ca_file=CA
    )
    with KubeClient(load_kubeconfig(path), transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as c:
        assert c.get("/api/v1/namespaces/default") == {}
    (tmp_path / "me.key").unlink()
    with pytest.raises(KubeCredentialsError, match="cannot set up TLS"):
        KubeClient(load_kubeconfig(path))


def _rotating_server(valid: list[str], seen: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen.append(token)
        if token != valid[0]:
            return httpx.Response(401, json={"kind": "Status", "code": 401, "reason": "Unauthorized"})
        return httpx.Response(200, json={"metadata": {"name": "default"}})

    return httpx.MockTransport(answer)


def test_token_file_is_read_again_when_the_server_refuses_the_old_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    path = write_kubeconfig(tmp_path / "config", "https://api.test", {"tokenFile": str(token)}, ca_file=CA)
    valid, seen = ["first"], []
    kube = KubeClient(load_kubeconfig(path), transport=_rotating_server(valid, seen))
    assert kube.get("/api/v1/namespaces/default")
    token.write_text("second\n")  # the kubelet rotated it; the old one expires
    valid[0] = "second"
    assert kube.get("/api/v1/namespaces/default")
    assert seen == ["first", "first", "second"]
    token.unlink()
    valid[0] = "third"
    with pytest.raises(KubeCredentialsError, match="not found"):
        kube.get("/api/v1/namespaces/default")


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token-1")
    (account / "namespace").write_text("flink-jobs\n")
    (account / "ca.crt").write_bytes(CA.read_bytes())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr("flinkops.kube.config.SERVICE_ACCOUNT_DIR", account)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: the service account is used
    config = load_config()
    assert (config.server, config.namespace, config.in_cluster) == ("https://[fd00::1]:443", "flink-jobs", True)
    assert "pod-token" not in repr(config)
    valid, seen = ["pod-token-1"], []
    kube = KubeClient(config, transport=_rotating_server(valid, seen))
    assert kube.get("/api/v1/namespaces/flink-jobs")
    (account / "token").write_text("pod-token-2")
    valid[0] = "pod-token-2"
    assert kube.get("/api/v1/namespaces/flink-jobs")
    assert seen[-1] == "pod-token-2"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(InvalidInput, match="not running inside a pod"):
        in_cluster_config(account)
