"""A kubeconfig that is malformed, or whose credentials cannot be had, is bad input wherever it is used: the CLI
and the operator (``flinkops operator run``) exit 2 with the file, the user and the reason, never a traceback,
and the operator does not start watching with credentials the API server refuses. Run as a user runs them: the
real CLI in a process of its own (no API server is needed: each of these fails before it would be asked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from flinkops.kube.client import KubeClient, KubeCredentialsError, load_kubeconfig
from support.kubeconfigs import exec_user, run_cli, write_kubeconfig

SERVER = "https://127.0.0.1:9"  # nothing listens: a request would fail with exit 1, not 2


def run_operator(kubeconfig: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["FLINKOPS_HOME"] = str(home)
    argv = ["operator", "run", "--kubeconfig", str(kubeconfig), "--context", "test", "--no-leader-election"]
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *argv, "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _malformed_yaml(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\nkind: Config\nclusters: [\n  - name: x\n   bad")
    return path, "is not valid YAML"


def _server_not_a_url(tmp_path: Path) -> tuple[Path, str]:
    path = write_kubeconfig(tmp_path / "config", "api.example:6443", {"token": "t"}, user_name="eks-admin")
    return path, "clusters[test-cluster].server: 'api.example:6443' is not an https:// URL of an API server"


def _failing_plugin(tmp_path: Path) -> tuple[Path, str]:
    path = write_kubeconfig(tmp_path / "config", SERVER, exec_user("--fail"), user_name="eks-admin")
    return path, "users[eks-admin]: the exec plugin"


def _missing_plugin(tmp_path: Path) -> tuple[Path, str]:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "no-such-aws-x"}}
    path = write_kubeconfig(tmp_path / "config", SERVER, user, user_name="eks-admin")
    return path, "users[eks-admin]"


def _missing_token_file(tmp_path: Path) -> tuple[Path, str]:
    path = write_kubeconfig(tmp_path / "config", SERVER, {"tokenFile": "gone/token"}, user_name="ci")
    return path, f"users[ci]: the tokenFile {tmp_path}/gone/token does not exist"


def _bad_certificate_data(tmp_path: Path) -> tuple[Path, str]:
    user = {"client-certificate-data": "!!!", "client-key-data": "!!!"}
    path = write_kubeconfig(tmp_path / "config", SERVER, user, user_name="admin")
    return path, "users[admin]: cannot set up TLS"


CASES = [
    _malformed_yaml,
    _server_not_a_url,
    _failing_plugin,
    _missing_plugin,
    _missing_token_file,
    _bad_certificate_data,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.lstrip("_") for c in CASES])
def test_the_cli_and_the_operator_exit_2_with_the_file_and_the_reason(tmp_path: Path, case: object) -> None:
    path, reason = case(tmp_path)  # type: ignore[operator]
    for done in (run_cli(path, tmp_path / "home", "get"), run_operator(path, tmp_path / "home")):
        said = done.stderr.replace("\n", "")
        assert done.returncode == 2, done.stderr
        assert str(path) in said and reason in said, done.stderr
        assert "Traceback" not in done.stderr


def test_credentials_the_api_server_refuses_are_bad_input(tmp_path: Path) -> None:
    """What the operator checks once at start: a token the API server answers 401 to names file and user."""

    def refuse(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"kind": "Status", "code": 401, "reason": "Unauthorized"})

    path = write_kubeconfig(tmp_path / "config", SERVER, {"token": "expired"}, user_name="eks-admin")
    client = KubeClient(load_kubeconfig(path), transport=httpx2.MockTransport(refuse))
    with pytest.raises(KubeCredentialsError) as caught:
        client.verify()
    assert f"{path}: users[eks-admin]: the API server at {SERVER} refused them" in str(caught.value)
    assert "expired" not in str(caught.value), "never the credential itself"
