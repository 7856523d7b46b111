"""Every kind of kubeconfig credential against the real kube-apiserver: exec plugins handing out the admin
client certificate (client.authentication.k8s.io v1beta1 and v1) or a ServiceAccount token, a certificate
replaced when it expires, client certificate files, static bearer tokens, token files, and an oidc id-token (a
ServiceAccount JWT, which the API server verifies with its own issuer: no OIDC provider runs here). The CLI is
run with an exec-plugin kubeconfig, as a user on EKS runs it with ``aws eks get-token``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkops.kube.client import KubeClient, KubeForbidden, load_kubeconfig
from support.kube import KubeCluster, install_crds, server_side_apply, service_account_token
from support.kubeconfigs import V1, V1BETA1, exec_user, run_cli, write_kubeconfig

NAMESPACE = "credentials"


@pytest.fixture(scope="module")
def admin(kube: KubeCluster) -> Iterator[httpx.Client]:
    with kube.client() as client:
        install_crds(client)
        yield client


@pytest.fixture(scope="module")
def sa_token(admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token file holding a one-hour token of a ServiceAccount bound to cluster-admin."""
    server_side_apply(
        admin,
        f"/api/v1/namespaces/{NAMESPACE}",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    )
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(service_account_token(admin, NAMESPACE, "reader"))
    return path


def client_for(kube: KubeCluster, tmp_path: Path, user: dict[str, Any], name: str = "config") -> KubeClient:
    path = write_kubeconfig(tmp_path / name, kube.server, user, ca_file=kube.ca_file, namespace=NAMESPACE)
    return KubeClient(load_kubeconfig(path))


def reads(client: KubeClient) -> bool:
    found = client.get("/api/v1/namespaces/default")
    return bool(found) and found["metadata"]["name"] == "default"


def cert_args(kube: KubeCluster) -> tuple[str, ...]:
    return ("--cert", str(kube.admin_cert_file), "--key", str(kube.admin_key_file))


def test_cli_works_with_an_exec_plugin_kubeconfig(kube: KubeCluster, admin: httpx.Client, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    user = exec_user(*cert_args(kube), "--log", str(log), api_version=V1BETA1, mode="IfAvailable")
    path = write_kubeconfig(tmp_path / "config", kube.server, user, ca_file=kube.ca_file, user_name="eks-admin")
    done = run_cli(path, tmp_path / "home", "get", "-A", "-o", "json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    assert log.read_text().count("\n") == 1  # one plugin run for the whole command


@pytest.mark.parametrize("api_version", [V1BETA1, V1])
def test_exec_plugin_client_certificate(
    kube: KubeCluster, admin: httpx.Client, tmp_path: Path, api_version: str
) -> None:
    with client_for(kube, tmp_path, exec_user(*cert_args(kube), api_version=api_version)) as client:
        assert reads(client)


def test_exec_plugin_certificate_is_replaced_when_it_expires(
    kube: KubeCluster, admin: httpx.Client, tmp_path: Path
) -> None:
    # valid for 12 s: with the 10 s refresh margin the plugin must run again about 2 s later
    user = exec_user(*cert_args(kube), "--expires-in", "12", "--log", str(tmp_path / "runs.log"))
    with client_for(kube, tmp_path, user) as client:
        assert client.exec_plugin is not None
        deadline = time.monotonic() + 30
        while client.exec_plugin.runs < 2:
            assert reads(client), "every request succeeds, before and after the new certificate"
            assert time.monotonic() < deadline, "the plugin was not run again after its credential expired"
            time.sleep(0.2)
        assert reads(client)


def test_tokens_from_an_exec_plugin_a_token_file_a_static_token_and_an_oidc_id_token(
    kube: KubeCluster, sa_token: Path, tmp_path: Path
) -> None:
    token = sa_token.read_text()
    users = {
        "exec": exec_user("--token-file", str(sa_token), "--expires-in", "3600", api_version=V1),
        "token-file": {"tokenFile": str(sa_token)},
        "token": {"token": token},
        "oidc": {"auth-provider": {"name": "oidc", "config": {"id-token": token, "client-id": "kubernetes"}}},
    }
    for name, user in users.items():
        with client_for(kube, tmp_path, user, name) as client:
            assert reads(client), name
            assert token not in repr(client) and token not in repr(client.config)
    with client_for(kube, tmp_path, {"token": token[:-4] + "AAAA"}, "wrong") as client:
        with pytest.raises(KubeForbidden) as caught:
            reads(client)
        assert token[:-4] not in str(caught.value)


def test_client_certificate_files(kube: KubeCluster, admin: httpx.Client, tmp_path: Path) -> None:
    user = {"client-certificate": str(kube.admin_cert_file), "client-key": str(kube.admin_key_file)}
    with client_for(kube, tmp_path, user) as client:
        assert reads(client)
