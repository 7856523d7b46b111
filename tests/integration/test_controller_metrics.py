"""The local controller's metrics: ``flinkops controller run --metrics-port`` serves the operator's families on
127.0.0.1, fed by each pass of the local loop and read from the store and the running jobs at each scrape, parsed
here with prometheus_client's own parser."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration.flinkops_cli import Flinkops, application
from support.testjobs import COUNTING_JOB

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_local_controller_serves_the_operators_metrics(tmp_path: Path, testjobs: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Flinkops(home)
    job = application(home, "paused", testjobs, COUNTING_JOB, ["--rate", "5"], {}, state="suspended")
    doc = json.loads(job.read_text())
    assert doc["spec"]["job"]["state"] == "suspended"
    port = _free_port()
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flinkops", "controller", "run", "--metrics-port", str(port)],
        env=cli.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the controller holds the home (its lock) once it serves its probes
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "controller.log").read_text()
            time.sleep(0.1)
        # `apply` while a controller runs in a terminal: it finds that one (the home's lock), starts no daemon.
        cli.ok("apply", "-f", str(job))
        assert not (home / "controller.pid").exists(), "apply started a daemon beside the running controller"
        deadline = time.monotonic() + 60
        key = ("flinkops_resources", (("kind", "FlinkDeployment"), ("lifecycle_state", "SUSPENDED")))
        while True:
            try:
                values = _samples(f"{url}/metrics")
                if values.get(key) == 1:
                    break
            except httpx.HTTPError:
                values = {}
            assert time.monotonic() < deadline, (values, (tmp_path / "controller.log").read_text()[-3000:])
            assert proc.poll() is None, (tmp_path / "controller.log").read_text()[-3000:]
            time.sleep(0.2)
        ok = ("flinkops_reconcile_total", (("kind", "FlinkDeployment"), ("result", "ok")))
        assert values[ok] >= 1
        assert values[("flinkops_reconcile_duration_seconds_count", (("kind", "FlinkDeployment"),))] >= values[ok]
        assert values[("flinkops_leader", ())] == 1
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert cli.processes("paused", "jobmanager") == [], "a suspended job starts nothing"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
