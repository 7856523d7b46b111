"""Flink's own Prometheus reporter on real local processes, configured as the seeds write it (port 9999): every
process gets a port of its own, the home's Prometheus service-discovery file lists each one while it runs and drops
it when the cluster goes, and every listed endpoint answers with the families Flink reports (parsed with
prometheus_client's own parser): the JobManager's registered TaskManagers, the TaskManager's JVM and its job's
records. Each endpoint listens on 127.0.0.1 only (flinkops' loopback factory in place of Flink's, which binds every
interface): the kernel's table of listening sockets says so, and the machine's other address is refused."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flinkops.api.reporters import LOOPBACK_FACTORY
from integration.flinkops_cli import Flinkops, application
from support.testjobs import COUNTING_JOB

pytestmark = pytest.mark.integration

NAME = "reported"
PROM = {
    "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
    "metrics.reporter.prom.port": "9999",
}
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(target: str) -> Samples:
    """Every sample the endpoint serves, by name: (labels, value)."""
    text = httpx.get(f"http://{target}/metrics", timeout=5).text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def listening_addresses(port: int) -> set[str]:
    """The local addresses the kernel has a listening TCP socket on at ``port`` (``/proc/net/tcp`` and ``tcp6``;
    IPv4-mapped IPv6 addresses as IPv4, the wildcard as ``0.0.0.0`` or ``::``)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # Each 32-bit word is in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(words)
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.add(str(mapped or ip))  # a Java socket is IPv6: 127.0.0.1 appears as ::ffff:127.0.0.1
    return found


def other_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (``ip -4 -o addr``)."""
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    addresses = [line.split()[3].split("/")[0] for line in listed.splitlines() if len(line.split()) > 3]
    return [a for a in addresses if not a.startswith("127.")]


def eventually(check: Callable[[], Samples | None], timeout: float, what: str) -> Samples:
    """``check``'s first non-None answer (a reporter registers a job's metrics as its tasks start)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_every_local_process_is_listed_for_prometheus_and_serves_flinks_metrics(
    flinkops: Flinkops, testjobs: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    job = application(tmp_path, NAME, testjobs, COUNTING_JOB, ["--rate", "20"], PROM)
    flinkops.ok("apply", "-f", str(job), "--wait", "--timeout", "240")
    flinkops.wait_lifecycle(NAME, "STABLE", timeout=240)

    discovery = flinkops.home / "prometheus" / "flink.json"
    entries = [e for e in json.loads(discovery.read_text()) if e["labels"]["name"] == NAME]
    by_process = {e["labels"]["process"]: e for e in entries}
    assert set(by_process) == {"jobmanager-0", "taskmanager-0"}
    for process, entry in by_process.items():
        assert entry["labels"] == {
            "namespace": "default",
            "name": NAME,
            "component": process.split("-")[0],
            "process": process,
            "reporter": "prom",
        }
    targets = {process: entry["targets"][0] for process, entry in by_process.items()}
    assert len(set(targets.values())) == 2 and not any(t.endswith(":9999") for t in targets.values())

    cluster = flinkops.home / "clusters" / "default" / NAME
    root = Path(json.loads((cluster / "cluster.json").read_text()).get("root") or cluster)
    config = (root / "conf" / "config.yaml").read_text()
    assert LOOPBACK_FACTORY in config, "locally, flinkops' factory in place of Flink's"
    others = other_ipv4_addresses()
    for target in targets.values():
        host, port = target.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert listening_addresses(int(port)) == {"127.0.0.1"}, f"{target} listens on 127.0.0.1 only"
        for address in others:
            with pytest.raises(ConnectionRefusedError), socket.create_connection((address, int(port)), timeout=5):
                pass

    jobmanager = scrape(targets["jobmanager-0"])
    assert [v for _, v in jobmanager["flink_jobmanager_numRegisteredTaskManagers"]] == [1.0]
    assert [v for _, v in jobmanager["flink_jobmanager_job_numRestarts"]] == [0.0]

    def records_out() -> Samples | None:
        found = scrape(targets["taskmanager-0"])
        out = found.get("flink_taskmanager_job_task_numRecordsOut", [])
        return found if any(v > 0 for _, v in out) else None

    taskmanager = eventually(records_out, 60, "the TaskManager's job to report records out")
    assert taskmanager["flink_taskmanager_Status_JVM_CPU_Load"], "the TaskManager's own JVM figures"
    (labels, _) = taskmanager["flink_taskmanager_job_task_numRecordsOut"][0]
    assert labels["job_name"] and labels["tm_id"]

    described = flinkops.ok("describe", NAME)
    for process, target in targets.items():
        assert any(process in line and f"http://{target}/metrics" in line for line in described.splitlines())
    assert str(discovery) in described

    flinkops.ok("delete", NAME)
    assert not [e for e in json.loads(discovery.read_text()) if e["labels"]["name"] == NAME]
    print(f"\nreporters scraped and listed in {time.monotonic() - started:.1f} s (other addresses tried: {others})")
