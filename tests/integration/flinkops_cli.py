"""Drive flinkops exactly as a user does: the real CLI in a subprocess, against a private FLINKOPS_HOME.

Called by the integration and Kubernetes tests (the ``flinkops`` fixtures in tests/integration/conftest.py).
Every command runs the real CLI, except :meth:`Flinkops.get`, the poll behind :meth:`Flinkops.wait_for`: it reads
the home's SQLite store in this process (a CLI start costs ~0.3 s of CPU, this machine also runs Flink) and
answers exactly what ``flinkops get NAME -n NAMESPACE -o json`` prints (both use ``dump_resource``), or None
where that command fails. Tests about the CLI itself run it with :meth:`Flinkops.run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flinkops.api.loader import dump_resource
from flinkops.errors import FlinkopsError
from flinkops.ports import ResourceKey
from flinkops.settings import store_path
from flinkops.stores.sqlite import SqliteStore
from support.jvm import with_test_jvm_args

# `flinkops get NAME` looks a name up in both kinds; it fails when neither or both have it.
KINDS = ("FlinkDeployment", "FlinkSessionJob")
POLL_SECONDS = 0.2  # a poll is an in-process SQLite read


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Flinkops:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.extra_env: dict[str, str] = {}
        self._store: SqliteStore | None = None  # opened on the first get (opening writes the schema)

    def env(self) -> dict[str, str]:
        # Flink processes the controller starts get the tests' JVM flags (support/jvm.py).
        return with_test_jvm_args(dict(os.environ, FLINKOPS_HOME=str(self.home), **self.extra_env))

    def run(self, *args: str, timeout: float = 300, input_text: str | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "flinkops", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, timeout: float = 300) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.code == 0, f"flinkops {' '.join(args)} -> {result.code}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """What ``flinkops get NAME -n NAMESPACE -o json`` prints, parsed; None where it would exit non-zero
        (no such resource, or the name is taken by both kinds). Read in this process from the local store."""
        try:
            if self._store is None:
                self._store = SqliteStore(store_path(self.home))
            store = self._store
            found = [r for kind in KINDS if (r := store.get(ResourceKey(kind, namespace, name))) is not None]
        except FlinkopsError:
            return None
        if len(found) != 1:
            return None
        data: dict[str, Any] = json.loads(json.dumps(dump_resource(found[0])))  # exactly the printed JSON
        return data

    def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        timeout: float = 180,
        what: str = "",
        namespace: str = "default",
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.get(name, namespace)
            if predicate(last):
                return last
            time.sleep(POLL_SECONDS)
        events = self.run("describe", name, "-n", namespace).stdout
        status = json.dumps((last or {}).get("status"), indent=1)[:6000]
        raise AssertionError(f"timed out waiting for {name} {what}; last status: {status}\n{events}")

    def wait_lifecycle(self, name: str, state: str, timeout: float = 180) -> dict[str, Any]:
        found = self.wait_for(
            name, lambda r: bool(r) and r.get("status", {}).get("lifecycleState") == state, timeout, state
        )
        assert found is not None
        return found

    def cluster_pids(self, name: str, namespace: str = "default") -> list[int]:
        record = self.home / "clusters" / namespace / name / "cluster.json"
        if not record.exists():
            return []
        return [p["pid"] for p in json.loads(record.read_text())["processes"]]

    def processes(self, name: str, role: str, namespace: str = "default") -> list[int]:
        """Pids of one role (jobmanager | taskmanager) of a deployment's cluster, from its record."""
        record = self.home / "clusters" / namespace / name / "cluster.json"
        if not record.exists():
            return []
        return [p["pid"] for p in json.loads(record.read_text())["processes"] if p["role"] == role]

    def events(self, name: str) -> str:
        return self.run("describe", name).stdout

    def controller_pid(self) -> int:
        return int(json.loads((self.home / "controller.pid").read_text())["pid"])

    def kill_everything(self) -> None:
        """Last-resort cleanup of processes this test home started (by recorded pid only)."""
        for record in self.home.glob("clusters/*/*/cluster.json"):
            for proc in json.loads(record.read_text()).get("processes", []):
                if running(proc["pid"]):
                    os.kill(proc["pid"], signal.SIGKILL)
        pid_file = self.home / "controller.pid"
        if pid_file.exists():
            pid = self.controller_pid()
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def application(
    directory: Path, name: str, jar: Path, entry_class: str, args: list[str], config: dict[str, str], **job: str
) -> Path:
    """Write a one-document FlinkDeployment running ``entry_class`` from ``jar``; returns the file."""
    doc = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {
            "flinkVersion": "v2_2",
            "flinkConfiguration": config,
            "job": {"jarURI": jar.as_uri(), "entryClass": entry_class, "args": args, "parallelism": 1, **job},
        },
    }
    path = directory / f"{name}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def status_of(resource: dict[str, Any] | None) -> dict[str, Any]:
    """A resource's status, empty until the controller first wrote one (a poll may come before that)."""
    found: dict[str, Any] = (resource or {}).get("status") or {}
    return found


def last_run(resource: dict[str, Any] | None) -> dict[str, Any]:
    """The newest entry of ``status.deploymentHistory``, empty before the first deploy."""
    runs: list[dict[str, Any]] = status_of(resource).get("deploymentHistory") or [{}]
    return runs[-1]


def running(pid: int) -> bool:
    """True when ``pid`` is a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
