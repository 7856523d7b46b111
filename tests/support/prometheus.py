"""A real Prometheus server for tests: built once from the Go module proxy with the local Go toolchain
(``github.com/prometheus/prometheus`` publishes its releases as ``v0.3XX.Y`` Go module versions; its go.mod has
replace and exclude directives, so ``go install`` refuses it and a wrapper module builds ``./cmd/prometheus``,
``flinkops.artifacts.go_wrapper_binaries``), cached in ``~/.cache/flinkops/go/prometheus-<version>/``, and run on
127.0.0.1 with a configuration that scrapes the given targets.

On this 2-core machine, niced and under load, the first build took 508 s (the module download cached) and gives a
105 MB binary (stripped, ``-s -w``); later runs reuse it.

Called by: ``tests/integration/test_observability_live.py``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from flinkops.artifacts import go_wrapper_binaries

__all__ = ["PROMETHEUS_MODULE", "PROMETHEUS_VERSION", "PrometheusServer", "prometheus_binary", "running_prometheus"]

PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
#: Prometheus 3.x as a Go module version.
PROMETHEUS_VERSION = "v0.316.0"
#: Prometheus' own build tag that leaves out every service-discovery plugin (Kubernetes, the clouds, Consul, ...);
#: static targets and file-based discovery, all the tests use, stay in.
PROMETHEUS_TAGS = ("remove_all_sd",)


def prometheus_binary(progress: Callable[[str], None] | None = None) -> Path:
    """The Prometheus server binary (built with Go the first time: minutes; ``scripts/prefetch.py`` builds it
    before the tests start)."""
    built = go_wrapper_binaries(
        PROMETHEUS_MODULE,
        PROMETHEUS_VERSION,
        {"prometheus": f"{PROMETHEUS_MODULE}/cmd/prometheus"},
        tags=PROMETHEUS_TAGS,
        progress=progress,
    )
    return built["prometheus"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query through the HTTP API (``/api/v1/query``)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        return active


@contextmanager
def running_prometheus(
    directory: Path, targets: Sequence[str], interval: str = "1s", *, file_sd: Sequence[Path] = ()
) -> Iterator[PrometheusServer]:
    """A Prometheus on 127.0.0.1 scraping ``targets`` (``host:port``, path ``/metrics``; job ``flinkops``) and the
    targets listed in the ``file_sd`` files (Prometheus' file-based service discovery; job ``flink``) every
    ``interval``, its data under ``directory``; stopped (its own process, by pid) on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs: list[dict[str, Any]] = [{"job_name": "flinkops", "static_configs": [{"targets": list(targets)}]}]
    if file_sd:
        jobs.append(
            {"job_name": "flink", "file_sd_configs": [{"files": [str(f) for f in file_sd], "refresh_interval": "5s"}]}
        )
    config = {"global": {"scrape_interval": interval, "evaluation_interval": interval}, "scrape_configs": jobs}
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = _free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(prometheus_binary()),
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
