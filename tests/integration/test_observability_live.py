"""Observability on one running example, as a user meets it.

The fraud-scoring example (its YAML, real Flink processes; Flink's Prometheus reporter on as the seeds write it,
port 9999; checkpoints every 3 s so their age moves) runs under ``flinkops controller run --metrics-port`` started
in a terminal, and is looked at from every side in turn, on the one running job:

* one scrape of the controller (prometheus_client's own parser): the per-resource series with the right values
  (STABLE, RUNNING, records/s in and out above zero, the checkpoint age moving), the reference operator's names,
  and the same figures from the service layer's reader that the page and ``top`` use;
* every Flink process, from the home's Prometheus service-discovery file: each serves Flink's own series, on
  127.0.0.1 only (as the JobManager's REST API does), and ``describe`` lists it;
* a real Prometheus server scraping the controller and, through that discovery file, every Flink process, and
  answering queries over what it stored;
* ``flinkops top --once`` and ``flinkops cost``: the records/s, the price so far, the running cluster's time;
* the fleet page in Chromium (Debian's, driven by Playwright) as a person uses it: the overview and the
  deployment's page, a savepoint taken from the page (button, confirmation, confirm) arriving in the status, and
  a 404 page; the screenshots are kept in ``.test-artifacts/`` (fleet-overview.png, fleet-detail.png,
  fleet-detail-savepoint.png) and checked for what they show.

Then the deployment is deleted and the discovery file no longer lists its processes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from flinkops.api.reporters import LOOPBACK_FACTORY
from flinkops.service.figures import figures
from flinkops.service.target import LocalTarget
from integration.flinkops_cli import Flinkops
from support.fleet import serving_ui
from support.prometheus import running_prometheus

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".test-artifacts"
EXAMPLE = REPO / "examples" / "fraud-scoring"
NAME = "fraud-scoring"
IDENT = {"namespace": "default", "name": NAME}
WIDTH = 1500
PROM = {
    "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
    "metrics.reporter.prom.port": "9999",
}
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Samples = dict[str, list[tuple[dict[str, str], float]]]


@dataclass
class Running:
    cli: Flinkops
    home: Path
    work: Path
    metrics: str  # the controller's address, http://127.0.0.1:PORT
    started: float

    @property
    def discovery(self) -> Path:
        return self.home / "prometheus" / "flink.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """``check``'s first truthy answer, polled every ``every`` seconds for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The example STABLE under a controller started in a terminal with its metrics on."""
    work = tmp_path_factory.mktemp("observability")
    home = work / "home"
    home.mkdir()
    cli = Flinkops(home)
    shutil.copy(EXAMPLE / "fraud_scoring.py", work)
    doc = yaml.safe_load((EXAMPLE / "fraud-scoring.yaml").read_text())
    config = doc["spec"]["flinkConfiguration"]
    config.update(PROM)
    config["execution.checkpointing.interval"] = "3 s"
    config["execution.checkpointing.min-pause"] = "1 s"
    config["kubernetes.operator.reconcile.interval"] = "1 s"
    doc["spec"]["job"]["args"] += ["--rows-per-second", "200"]
    spec = work / "fraud-scoring.yaml"
    spec.write_text(yaml.safe_dump(doc))

    port = _free_port()
    log = work / "controller.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flinkops", "controller", "run", "--metrics-port", str(port)],
            env=cli.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def serving() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            return False

        _until(serving, 60, "the controller's probes", 0.1)  # it holds the home: apply uses it, starts no daemon
        started = time.monotonic()
        cli.ok("apply", "-f", str(spec), "--wait", "--timeout", "240")
        cli.wait_lifecycle(NAME, "STABLE", 240)  # the job runs and has completed a checkpoint
        assert not (home / "controller.pid").exists(), "apply started a daemon beside the running controller"
        yield Running(cli, home, work, url, started)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            cli.kill_everything()


def _values(url: str) -> Values:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _series(values: Values, family: str, /, **labels: str) -> float | None:
    """The value of the series ``family`` whose labels include ``labels`` (None: no such series)."""
    for (sample, found), value in values.items():
        if sample == family and set(labels.items()) <= set(found):
            return value
    return None


def _scrape(target: str) -> Samples:
    """Every sample a Flink reporter serves, by name: (labels, value)."""
    found: Samples = {}
    for family in text_string_to_metric_families(httpx.get(f"http://{target}/metrics", timeout=5).text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _listening_addresses(port: int) -> set[str]:
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
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # each word in host order
            ip = ipaddress.ip_address(words)
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.add(str(mapped or ip))  # a Java socket is IPv6: 127.0.0.1 appears as ::ffff:127.0.0.1
    return found


def _other_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (``ip -4 -o addr``)."""
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    addresses = [line.split()[3].split("/")[0] for line in listed.splitlines() if len(line.split()) > 3]
    return [a for a in addresses if not a.startswith("127.")]


def _listed(run: Running) -> dict[str, str]:
    """The example's processes in the discovery file: process -> host:port."""
    entries = [e for e in json.loads(run.discovery.read_text()) if e["labels"]["name"] == NAME]
    for entry in entries:
        process = entry["labels"]["process"]
        assert entry["labels"] == {**IDENT, "component": process.split("-")[0], "process": process, "reporter": "prom"}
    return {e["labels"]["process"]: e["targets"][0] for e in entries}


# ------------------------------------------------------------------------------------------------ the controller


def test_one_scrape_of_the_controller_shows_the_running_job(running: Running) -> None:
    def live() -> Values | None:
        with contextlib.suppress(httpx.HTTPError):
            values = _values(running.metrics)
            if (
                _series(values, "flinkops_flinkdeployment_lifecycle_state", state="STABLE", **IDENT) == 1
                and _series(values, "flinkops_flinkdeployment_job_state", state="RUNNING", **IDENT) == 1
                and (_series(values, "flinkops_flinkdeployment_records_in_per_second", **IDENT) or 0) > 0
                and (_series(values, "flinkops_flinkdeployment_records_out_per_second", **IDENT) or 0) > 0
                and _series(values, "flinkops_flinkdeployment_last_checkpoint_age_seconds", **IDENT) is not None
            ):
                return values
        return None

    values: Values = _until(live, 120, "STABLE, RUNNING, records flowing and a checkpoint age in one scrape")
    assert _series(values, "flinkops_flinkdeployment_lifecycle_state", state="DEPLOYED", **IDENT) == 0  # one-hot
    assert _series(values, "flinkops_flinkdeployment_flink_up", **IDENT) == 1
    assert _series(values, "flinkops_flinkdeployment_info", **IDENT) == 1
    assert _series(values, "flinkops_flinkdeployment_restarts", **IDENT) == 0
    assert _series(values, "flinkops_flinkdeployment_running_parallelism", **IDENT) == 2
    assert _series(values, "flinkops_flinkdeployment_kafka_lag_records", **IDENT) is None  # it reads no Kafka
    busy = _series(values, "flinkops_flinkdeployment_busy_ratio", **IDENT)
    assert busy is not None and 0 <= busy <= 1
    # The reference operator's names, as its Prometheus reporter writes them: dashboards built on it keep working.
    scope = {"resourcens": "default", "resourcetype": "FlinkDeployment"}
    assert _series(values, "flink_k8soperator_namespace_Count", **scope) == 1
    assert _series(values, "flink_k8soperator_namespace_Lifecycle_State_STABLE_Count", **scope) == 1
    assert _series(values, "flink_k8soperator_namespace_JmDeploymentStatus_READY_Count", **scope) == 1
    stabilized = "flink_k8soperator_FlinkDeployment_Lifecycle_Transition_Stabilization_TimeSeconds_count"
    assert _series(values, stabilized) == 1
    assert (_series(values, "flinkops_reconcile_total", kind="FlinkDeployment", result="ok") or 0) >= 1

    # The checkpoint age moves: it grows between checkpoints and falls back when one completes (3 s apart).
    ages: set[float] = set()

    def moved() -> bool:
        age = _series(_values(running.metrics), "flinkops_flinkdeployment_last_checkpoint_age_seconds", **IDENT)
        assert age is not None and age < 30, age
        ages.add(round(age, 1))
        return len(ages) >= 3

    _until(moved, 30, "the checkpoint age to move", 0.7)
    # The service layer's reader (the page and `flinkops top` use it) gives the same figures.
    [read] = figures(LocalTarget(running.home), NAME)
    assert read.known and read.figures is not None and read.figures.state == "RUNNING"
    assert (read.figures.records_in_per_second or 0) > 0
    assert any(v.is_source for v in read.figures.vertices)
    print(f"\n[observability] controller scraped, {time.monotonic() - running.started:.1f}s after apply")


# ----------------------------------------------------------------------------------------- Flink's own reporters


def test_every_flink_process_is_listed_and_serves_flinks_own_metrics_on_loopback_only(running: Running) -> None:
    targets = _listed(running)
    taskmanagers = [p for p in targets if p.startswith("taskmanager-")]
    assert "jobmanager-0" in targets and taskmanagers, targets
    assert len(set(targets.values())) == len(targets) and not any(t.endswith(":9999") for t in targets.values())
    cluster = running.home / "clusters" / "default" / NAME
    record = json.loads((cluster / "cluster.json").read_text())
    root = Path(record.get("root") or cluster)
    assert LOOPBACK_FACTORY in (root / "conf" / "config.yaml").read_text(), (
        "locally, flinkops' factory in Flink's place"
    )
    others = _other_ipv4_addresses()
    # Flink's REST API and UI too: locally the gateway is the only way in from another machine.
    rest = str(record["rest_url"]).removeprefix("http://")
    for target in [*targets.values(), rest]:
        host, port = target.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert _listening_addresses(int(port)) == {"127.0.0.1"}, f"{target} listens on 127.0.0.1 only"
        for address in others:
            with pytest.raises(ConnectionRefusedError), socket.create_connection((address, int(port)), timeout=5):
                pass

    jobmanager = _scrape(targets["jobmanager-0"])
    assert [v for _, v in jobmanager["flink_jobmanager_numRegisteredTaskManagers"]] == [float(len(taskmanagers))]
    assert [v for _, v in jobmanager["flink_jobmanager_job_numRestarts"]] == [0.0]

    def records_out() -> Samples | None:
        found = _scrape(targets[taskmanagers[0]])
        return found if any(v > 0 for _, v in found.get("flink_taskmanager_job_task_numRecordsOut", [])) else None

    taskmanager: Samples = _until(records_out, 60, "the TaskManager's job to report records out")
    assert taskmanager["flink_taskmanager_Status_JVM_CPU_Load"], "the TaskManager's own JVM figures"
    (labels, _) = taskmanager["flink_taskmanager_job_task_numRecordsOut"][0]
    assert labels["job_name"] and labels["tm_id"]

    described = running.cli.ok("describe", NAME)
    for process, target in targets.items():
        assert any(process in line and f"http://{target}/metrics" in line for line in described.splitlines())
    assert str(running.discovery) in described and "127.0.0.1" in described
    print(f"\n[observability] reporters checked (other addresses tried: {others})")


def test_a_real_prometheus_scrapes_the_controller_and_every_flink_process(running: Running) -> None:
    controller = running.metrics.removeprefix("http://")
    with running_prometheus(running.work / "prometheus", [controller], file_sd=[running.discovery]) as prometheus:

        def stored(query: str) -> Callable[[], list[dict[str, Any]]]:
            return lambda: prometheus.query(query)

        found = _until(stored(f'flinkops_flinkdeployment_records_in_per_second{{name="{NAME}"}} > 0'), 60,
                       "the controller's figures in Prometheus")  # fmt: skip
        assert found[0]["metric"]["namespace"] == "default"
        registered = _until(stored(f'flink_jobmanager_numRegisteredTaskManagers{{name="{NAME}"}}'), 60,
                            "the JobManager's own series, found through the discovery file")  # fmt: skip
        assert registered[0]["metric"]["component"] == "jobmanager" and float(registered[0]["value"][1]) >= 1
        stable = prometheus.query('flink_k8soperator_namespace_Lifecycle_State_STABLE_Count{resourcens="default"}')
        assert [float(r["value"][1]) for r in stable] == [1.0]
        health = {(t["labels"]["job"], t["health"]) for t in prometheus.targets()}
        assert health == {("flinkops", "up"), ("flink", "up")}, prometheus.targets()
        assert len(prometheus.targets()) == 1 + len(_listed(running))
    print(f"\n[observability] through a real Prometheus, {time.monotonic() - running.started:.1f}s after apply")


# ------------------------------------------------------------------------------------------------ top and cost


def test_top_and_cost_show_the_job_live_and_its_price_so_far(running: Running) -> None:
    def frame() -> list[str] | None:
        printed = running.cli.ok("top", "--once")
        row = next(line for line in printed.splitlines() if f" {NAME} " in line).split()
        return row if row[4] != "?" and float(row[4]) > 0 else None

    row: list[str] = _until(frame, 60, "top to show records/s")
    assert row[:4] == ["default", NAME, "STABLE", "RUNNING"], row
    assert float(row[5]) >= 0 and row[6].endswith("%"), row  # records/s out, backpressure
    assert re.fullmatch(r"\d+s", row[7]) and row[8] == "0", row  # checkpoint age, restarts
    assert float(row[9]) > 0 and row[10] == "USD", row  # the price so far

    report = json.loads(running.cli.ok("cost", NAME, "-o", "json"))
    [run] = report["runs"]
    asked = time.time() * 1000
    # The running cluster counts to now: from when it was asked for to this report.
    assert run["live"] is True and 0 < run["wallMs"] <= asked - run["startedAt"] + 2000, run
    slots = run["requested"]["taskManagers"] * run["requested"]["taskSlots"]
    assert run["slotSeconds"] == pytest.approx(slots * run["wallMs"] / 1000, rel=0.01), run
    assert report["total"]["price"] > 0 and report["currency"] == "USD", report["total"]
    # The running run's busy share and checkpoint count, asked of its JobManager for the report, and what it used
    # as the controller recorded it once Flink's CPU counter answered.
    assert run["efficiency"] is not None and 0 <= run["efficiency"] <= 1, run
    assert run["checkpoints"] >= 1 and run["usedVcpuSeconds"] > 0 and run["usedGibSeconds"] is not None, run
    print(f"\n[observability] top: {' '.join(row)}")


# ------------------------------------------------------------------------------------------------ the page


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    width, height = _png_size(path)
    assert width == WIDTH and height >= 300, (width, height)
    assert path.stat().st_size > 20_000, "a page with content, not a blank one"
    return path


def _savepoint_nonce(resource: dict[str, Any] | None) -> int | None:
    last = (((resource or {}).get("status") or {}).get("jobStatus") or {}).get("savepointInfo") or {}
    found = (last.get("lastSavepoint") or {}).get("triggerNonce")
    return found if isinstance(found, int) else None


@pytest.fixture
def fleet_page(running: Running) -> Iterator[str]:
    """``flinkops ui --port 0`` in its own process, as a user starts it; its address."""
    with serving_ui(running.cli.env()) as address:
        yield address


def test_the_page_shows_the_running_example_and_takes_a_savepoint_from_the_browser(
    running: Running, fleet_page: str
) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian's chromium is needed (scripts/bootstrap.sh installs it)"
    from playwright.sync_api import expect, sync_playwright

    cli = running.cli
    ARTIFACTS.mkdir(exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
        try:
            page = browser.new_context(viewport={"width": WIDTH, "height": 700}).new_page()
            page.goto(f"{fleet_page}/")
            row = page.locator("#fleet tbody tr", has_text=NAME)
            # The age of Flink's own last checkpoint: the page reads the job's live figures in the background and
            # its script refreshes the table in place (no reload here).
            expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^\d+s$"), timeout=30_000)
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            assert cells[:5] == ["default", NAME, "deployment", "STABLE", "RUNNING"], cells
            assert re.fullmatch(r"\d+s", cells[5]), f"checkpoint age {cells[5]!r}"
            assert cells[8] == "2"  # parallelism
            assert re.fullmatch(r"\d+\.\d{2,4} USD", cells[9]) and float(cells[9].split()[0]) > 0, cells[9]  # so far
            assert row.get_by_role("link", name="Flink UI").get_attribute("href", timeout=5_000)
            _shot(page, "fleet-overview.png")

            row.get_by_role("link", name=NAME).click()
            page.wait_for_url(f"{fleet_page}/namespaces/default/flinkdeployments/{NAME}")
            text = page.inner_text("main")
            assert f"default/{NAME}" in text and "STABLE" in text and "first-deploy" in text
            assert "Starting deployment" in text  # an event
            assert re.search(r"Checkpoint age\s+\d+s", text), text
            priced = page.inner_text("#cost")  # the cost section: the running run, priced as `flinkops cost` does
            assert "1 (running)" in priced and "USD" in priced, priced
            _shot(page, "fleet-detail.png")

            before = _savepoint_nonce(cli.get(NAME))
            page.get_by_role("button", name="Savepoint…").click()
            assert f"Confirm: savepoint default/{NAME}" in page.inner_text("main")
            assert _savepoint_nonce(cli.get(NAME)) == before, "the confirmation changes nothing"
            page.get_by_role("button", name="Yes, savepoint").click()
            page.wait_for_url(re.compile(r".*\?done=savepoint$"))
            assert "Take a savepoint of the running job now: requested" in page.inner_text("#done")

            taken = cli.wait_for(NAME, lambda r: _savepoint_nonce(r) == (before or 0) + 1, 120, "the page's savepoint")
            location = taken["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]  # type: ignore[index]
            page.goto(f"{fleet_page}/namespaces/default/flinkdeployments/{NAME}")
            assert location in page.inner_text("main"), "the new savepoint is on the page"
            _shot(page, "fleet-detail-savepoint.png")

            missing = page.goto(f"{fleet_page}/namespaces/default/flinkdeployments/nope")
            assert missing is not None and missing.status == 404
            assert "There is no FlinkDeployment default/nope" in page.inner_text("main")
        finally:
            browser.close()


def test_deleted_its_processes_leave_the_discovery_file(running: Running) -> None:
    assert _listed(running), "listed while it runs"
    running.cli.ok("delete", NAME)
    assert not _listed(running)
    print(f"\n[observability] the whole module: {time.monotonic() - running.started:.1f}s after apply")
