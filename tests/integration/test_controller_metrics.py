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

from flinkops.service.figures import figures
from flinkops.service.target import LocalTarget
from integration.flinkops_cli import Flinkops, application
from support.prometheus import running_prometheus
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


def _series(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], family: str, /, **labels: str
) -> float | None:
    """The value of the series ``family`` whose labels include ``labels`` (None: no such series)."""
    for (sample, found), value in values.items():
        if sample == family and set(labels.items()) <= set(found):
            return value
    return None


def test_a_running_job_shows_in_one_scrape_with_its_live_figures(tmp_path: Path, testjobs: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "home"
    home.mkdir()
    cli = Flinkops(home)
    job = application(home, "counting", testjobs, COUNTING_JOB, ["--rate", "50", "--checkpoint-interval", "1000"], {})
    port = _free_port()
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flinkops", "controller", "run", "--metrics-port", str(port)],
        env=cli.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    ident = {"namespace": "default", "name": "counting"}
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "controller.log").read_text()
            time.sleep(0.1)
        cli.ok("apply", "-f", str(job))
        deadline = time.monotonic() + 180
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while True:  # STABLE, RUNNING, records flowing, a checkpoint completed
            with contextlib.suppress(httpx.HTTPError):
                values = _samples(url)
            if (
                _series(values, "flinkops_flinkdeployment_lifecycle_state", state="STABLE", **ident) == 1
                and _series(values, "flinkops_flinkdeployment_job_state", state="RUNNING", **ident) == 1
                and (_series(values, "flinkops_flinkdeployment_records_in_per_second", **ident) or 0) > 0
                and (_series(values, "flinkops_flinkdeployment_records_out_per_second", **ident) or 0) > 0
                and _series(values, "flinkops_flinkdeployment_last_checkpoint_age_seconds", **ident) is not None
            ):
                break
            assert time.monotonic() < deadline, (values, (tmp_path / "controller.log").read_text()[-3000:])
            assert proc.poll() is None, (tmp_path / "controller.log").read_text()[-3000:]
            time.sleep(0.5)
        assert _series(values, "flinkops_flinkdeployment_flink_up", **ident) == 1
        assert _series(values, "flinkops_flinkdeployment_info", **ident) == 1
        assert _series(values, "flinkops_flinkdeployment_restarts", **ident) == 0
        assert _series(values, "flinkops_flinkdeployment_running_parallelism", **ident) == 1
        assert _series(values, "flinkops_flinkdeployment_kafka_lag_records", **ident) is None  # it reads no Kafka
        busy = _series(values, "flinkops_flinkdeployment_busy_ratio", **ident)
        assert busy is not None and 0 <= busy <= 1
        # The reference operator's names, as its Prometheus reporter writes them.
        scope = {"resourcens": "default", "resourcetype": "FlinkDeployment"}
        assert _series(values, "flink_k8soperator_namespace_Count", **scope) == 1
        assert _series(values, "flink_k8soperator_namespace_Lifecycle_State_STABLE_Count", **scope) == 1
        assert _series(values, "flink_k8soperator_namespace_JmDeploymentStatus_READY_Count", **scope) == 1
        assert (
            _series(values, "flink_k8soperator_FlinkDeployment_Lifecycle_Transition_Stabilization_TimeSeconds_count")
            == 1
        )
        # The checkpoint age moves: it grows between checkpoints and falls back when one completes (1 s apart).
        ages = set()
        deadline = time.monotonic() + 30
        while len(ages) < 3:
            age = _series(_samples(url), "flinkops_flinkdeployment_last_checkpoint_age_seconds", **ident)
            assert age is not None and age < 30, age
            ages.add(round(age, 1))
            assert time.monotonic() < deadline, ages
            time.sleep(0.7)
        # The service layer's reader (the page and `flinkops top` use it) gives the same figures.
        [read] = figures(LocalTarget(home), "counting")
        assert read.known and read.figures is not None and read.figures.state == "RUNNING"
        assert (read.figures.records_in_per_second or 0) > 0
        assert [v.is_source for v in read.figures.vertices] == [True, False]
        print(f"\nrunning job scraped in {time.monotonic() - started:.1f}s")
        # A real Prometheus server scrapes the controller; its HTTP API answers a query over what it stored.
        with running_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"]) as prometheus:
            query = 'flinkops_flinkdeployment_records_in_per_second{name="counting"} > 0'
            deadline = time.monotonic() + 60
            while not (found := prometheus.query(query)):
                assert time.monotonic() < deadline, (prometheus.targets(), prometheus.log.read_text()[-2000:])
                time.sleep(0.5)
            assert found[0]["metric"]["namespace"] == "default"
            stable = prometheus.query('flink_k8soperator_namespace_Lifecycle_State_STABLE_Count{resourcens="default"}')
            assert [float(r["value"][1]) for r in stable] == [1.0]
            assert [t["health"] for t in prometheus.targets()] == ["up"]
        print(f"and through a real Prometheus in {time.monotonic() - started:.1f}s")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
        cli.kill_everything()
