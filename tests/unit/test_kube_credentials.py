"""Kubeconfig credentials that run code: exec plugins (a real plugin process, tests/fixtures/kube/exec_plugin.py,
answering a client that talks to an httpx2 mock API server) and oidc id-tokens. What a user sees when a plugin
fails is checked through the real CLI: exit 2, the kubeconfig file and user named, no traceback."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import httpx2
import pytest

from flinkops.kube.client import KubeClient, KubeCredentialsError, load_kubeconfig
from flinkops.kube.credentials import ExecPlugin
from support.kubeconfigs import V1, V1BETA1, exec_user, run_cli, self_signed, write_kubeconfig

SERVER = "https://api.test"


@pytest.fixture(scope="module", autouse=True)
def _small_ca(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A small CA: the cluster info handed to a plugin must fit in one environment variable."""
    global CA
    CA, _ = self_signed(tmp_path_factory.mktemp("ca"))


CA = Path()


class Api:
    """A mock API server that accepts one bearer token at a time and records what it was sent."""

    def __init__(self, valid: str) -> None:
        self.valid, self.seen = valid, list[str]()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        if token != self.valid:
            return httpx2.Response(401, json={"kind": "Status", "code": 401, "reason": "Unauthorized"})
        return httpx2.Response(200, json={"kind": "Namespace", "metadata": {"name": "default"}})


def kube(tmp_path: Path, user: dict[str, object], api: Api) -> KubeClient:
    path = write_kubeconfig(tmp_path / "config", SERVER, user, ca_file=CA)
    return KubeClient(load_kubeconfig(path), transport=httpx2.MockTransport(api))


def runs(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_token_plugin_gets_args_env_and_exec_info_and_is_cached_until_it_expires(tmp_path: Path) -> None:
    token, log = tmp_path / "token", tmp_path / "runs.log"
    token.write_text("tok-1")
    user = exec_user(
        "--token-file", str(token), "--expires-in", "3600", "--log", str(log), "--show-env", "AWS_PROFILE",
        "--require-env", "AWS_PROFILE=prod",
        env={"AWS_PROFILE": "prod"},
    )  # fmt: skip
    api = Api("tok-1")
    client = kube(tmp_path, user, api)
    for _ in range(5):
        assert client.get("/api/v1/namespaces/default")
    assert api.seen == ["tok-1"] * 5
    [run] = runs(log)  # one run for five requests: the credential is valid for an hour
    assert run["env"] == {"AWS_PROFILE": "prod"}
    assert run["exec_info"] == {"apiVersion": V1BETA1, "kind": "ExecCredential", "spec": {"interactive": False}}
    assert "tok-1" not in repr(client) and "tok-1" not in repr(client.config)


def test_an_expired_credential_runs_the_plugin_again(tmp_path: Path) -> None:
    token, log = tmp_path / "token", tmp_path / "runs.log"
    token.write_text("tok-1")
    # expires 5 s from now: inside the refresh margin, so every request needs a fresh one
    user = exec_user("--token-file", str(token), "--expires-in", "5", "--log", str(log), api_version=V1)
    client = kube(tmp_path, user, Api("tok-1"))
    client.get("/api/v1/namespaces/default")
    client.get("/api/v1/namespaces/default")
    assert len(runs(log)) == 3  # building the client, then each request
    assert runs(log)[0]["exec_info"]["apiVersion"] == V1  # type: ignore[index]


def test_a_refused_token_runs_the_plugin_again_and_retries_once(tmp_path: Path) -> None:
    token, log = tmp_path / "token", tmp_path / "runs.log"
    token.write_text("old")
    api = Api("old")
    client = kube(tmp_path, exec_user("--token-file", str(token), "--log", str(log)), api)
    assert client.get("/api/v1/namespaces/default")
    token.write_text("new")  # the old one was revoked
    api.valid = "new"
    assert client.get("/api/v1/namespaces/default")
    assert api.seen == ["old", "old", "new"] and len(runs(log)) == 2


@pytest.mark.parametrize(
    ("args", "user_extra", "expected"),
    [
        (("--fail",), {}, "failed (exit status 1): test plugin: the session has expired; log in again"),
        (("--garbage",), {}, "printed something that is not an ExecCredential (not JSON)"),
        (("--api-version", V1), {}, "answered with apiVersion"),
        ((), {}, "gave neither a token nor a client certificate"),
        ((), {"apiVersion": "client.authentication.k8s.io/v1alpha1"}, "v1alpha1 was removed"),
        ((), {"interactiveMode": "Always"}, "needs a terminal (interactiveMode: Always)"),
        ((), {"apiVersion": V1, "interactiveMode": None}, "interactiveMode '' is not one of"),
        ((), {"command": "no-such-plugin-x", "installHint": "brew install it"}, "brew install it"),
    ],
)
def test_plugin_failures_are_credential_errors_naming_the_file_and_user(
    tmp_path: Path, args: tuple[str, ...], user_extra: dict[str, object], expected: str
) -> None:
    user = exec_user(*args)
    user["exec"].update(user_extra)  # type: ignore[attr-defined]
    path = write_kubeconfig(tmp_path / "config", SERVER, user, ca_file=CA, user_name="eks-admin")
    with pytest.raises(KubeCredentialsError) as caught:
        KubeClient(load_kubeconfig(path))
    assert f"{path}: users[eks-admin]" in str(caught.value)
    assert expected in str(caught.value)


def test_interactive_mode_and_cluster_info(tmp_path: Path) -> None:
    token, log = tmp_path / "token", tmp_path / "runs.log"
    token.write_text("tok")
    user = exec_user("--token-file", str(token), "--log", str(log), mode="IfAvailable", provideClusterInfo=True)
    config = load_kubeconfig(write_kubeconfig(tmp_path / "config", SERVER, user, ca_file=CA))
    ExecPlugin(config, terminal=lambda: False).credential()
    # a terminal is handed over only when there is one; the cluster is described when asked for
    ExecPlugin(config, terminal=lambda: True).credential()
    first, second = (r["exec_info"] for r in runs(log))
    assert first["spec"]["interactive"] is False and second["spec"]["interactive"] is True  # type: ignore[index]
    cluster = first["spec"]["cluster"]  # type: ignore[index]
    assert cluster["server"] == SERVER and base64.b64decode(cluster["certificate-authority-data"]) == CA.read_bytes()


def test_a_relative_command_runs_next_to_the_kubeconfig(tmp_path: Path) -> None:
    plugin = tmp_path / "bin" / "get-token"
    plugin.parent.mkdir()
    plugin.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': '{V1BETA1}', "
        "'kind': 'ExecCredential', 'status': {'token': 'rel'}}))\n"
    )
    plugin.chmod(0o755)
    user = {"exec": {"apiVersion": V1BETA1, "command": "./bin/get-token", "interactiveMode": "Never"}}
    assert kube(tmp_path, user, Api("rel")).get("/api/v1/namespaces/default")


def _jwt(exp: float) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': 'me', 'exp': exp})}.c2ln"


def test_oidc_id_token_is_used_while_valid(tmp_path: Path) -> None:
    valid = _jwt(time.time() + 600)
    user = {"auth-provider": {"name": "oidc", "config": {"id-token": valid, "client-id": "k8s"}}}
    api = Api(valid)
    assert kube(tmp_path, user, api).get("/api/v1/namespaces/default") and api.seen == [valid]
    expired = {"auth-provider": {"name": "oidc", "config": {"id-token": _jwt(time.time() - 1)}}}
    with pytest.raises(KubeCredentialsError, match="kubelogin"):
        kube(tmp_path, expired, api)
    with pytest.raises(KubeCredentialsError, match="no longer part of Kubernetes clients"):
        kube(tmp_path, {"auth-provider": {"name": "gcp", "config": {}}}, api)


def test_cli_reports_a_failing_plugin_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", "https://127.0.0.1:9", exec_user("--fail"), ca_file=CA, user_name="eks-admin"
    )
    for argv in (["get"], ["get", "flinkdeployments", "-o", "json"], ["delete", "x"]):
        done = run_cli(path, tmp_path / "home", *argv)
        assert done.returncode == 2, done.stderr
        assert f"{path}: users[eks-admin]" in done.stderr.replace("\n", "")
        assert "session has expired" in done.stderr and "Traceback" not in done.stderr
