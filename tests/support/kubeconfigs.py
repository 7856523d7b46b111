"""Kubeconfig files for credential tests: one cluster, one user, one context, and exec users that run the test
plugin (``tests/fixtures/kube/exec_plugin.py``) with the interpreter running the tests; ``run_cli`` runs the
real CLI with such a file."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PLUGIN = Path(__file__).resolve().parents[1] / "fixtures" / "kube" / "exec_plugin.py"
V1BETA1, V1 = "client.authentication.k8s.io/v1beta1", "client.authentication.k8s.io/v1"


def self_signed(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A small self-signed certificate and its key (``name.crt``, ``name.key``) made by openssl."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # noqa: RUF005
        + ["-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name}"],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return directory / f"{name}.crt", directory / f"{name}.key"


def write_kubeconfig(
    path: Path,
    server: str,
    user: dict[str, Any],
    *,
    ca_file: Path | None = None,
    namespace: str | None = None,
    context: str = "test",
    user_name: str = "tester",
) -> Path:
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    ctx: dict[str, Any] = {"cluster": "test-cluster", "user": user_name}
    if namespace:
        ctx["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test-cluster", "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def exec_user(
    *args: str, api_version: str = V1BETA1, mode: str | None = "Never", env: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A kubeconfig user whose credentials come from the test plugin run with ``args``."""
    spec: dict[str, Any] = {"apiVersion": api_version, "command": sys.executable, "args": [str(PLUGIN), *args]}
    if mode is not None:
        spec["interactiveMode"] = mode
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec.update(extra)
    return {"exec": spec}


def run_cli(
    kubeconfig: Path, home: Path, *argv: str, context: str = "test", timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``flinkops --kubeconfig FILE --context CONTEXT ARGV`` as a user runs it, in a process of its own
    (``KUBECONFIG`` unset, ``FLINKOPS_HOME`` = ``home``)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["FLINKOPS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "flinkops", "--kubeconfig", str(kubeconfig), "--context", context, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
