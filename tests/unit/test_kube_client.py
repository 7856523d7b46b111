"""The Kubernetes client's contract, through an httpx transport: kubeconfig loading, paths, and the translation
of API server answers into flinkops errors (decided by status code and reason, never by message text)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flinkops.errors import Conflict, InvalidInput, NotFound
from flinkops.kube.client import (
    AlreadyExists,
    Expired,
    KubeClient,
    KubeConfig,
    KubeForbidden,
    KubeRejected,
    KubeUnavailable,
    load_kubeconfig,
    object_path,
)


def client(handler: Any) -> KubeClient:
    return KubeClient(KubeConfig(server="https://api.test", token="s3cret"), transport=httpx.MockTransport(handler))


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
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(KubeConfig(server="https://x", token="s3cret"))


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
    assert (config.server, config.namespace, config.token, config.ca_data) == (
        "https://k:6443",
        "jobs",
        "t",
        b"not a real ca",
    )
    with pytest.raises(InvalidInput, match="known contexts: one, plugin"):
        load_kubeconfig(path, "nope")
    with pytest.raises(InvalidInput, match="exec or auth-provider"):
        load_kubeconfig(path, "plugin")
