"""Shared by the stateful benchmarks (``recovery.py``, ``upgrade_downtime.py``): the VerifierJob set-up used on
both sides, REST polling, trace and log timing, the flinkops CLI against a private home, and cleanup.

Both sides of every comparison run the same job with the same Flink settings (``FLINK_CONFIG``; the raw side
also gets what flinkops adds by default that matters to the job: retained checkpoints and a JobManager that
stays up after the job ends). ``web.refresh-interval: 200 ms`` keeps Flink's REST cache from blurring the
polled timings on both sides.

``cluster.registration.error-delay: 1 s`` on both sides, unless ``--flink-registration-delay``: a new cluster's
TaskManager JVM often comes up before the JobManager's ResourceManager runs; its first registration attempt then
fails and Flink waits this delay (10 s by default) before the next one. Whether that happens is a race that
either side wins or loses from one round to the next, so with the default a 10 s coin toss would decide the
ratio. The shorter delay keeps the comparison about what each side does; the flag measures Flink as shipped.

Not a benchmark itself: imported by the benchmark scripts in this directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from flinkops.errors import FlinkopsError  # noqa: E402
from flinkops.flink.rest import FlinkRestClient  # noqa: E402
from flinkops.procs import start_ticks  # noqa: E402
from support.rawflink import RawCluster  # noqa: E402
from support.verifier import ENTRY_CLASS, trace_files  # noqa: E402

KEYS = 64
RATE = 200  # records per second
INTERVAL_MS = 1000  # checkpoint interval
PARALLELISM = 2  # on one TaskManager with 2 slots
POLL_SECONDS = 0.1
GOAL = 1.2
SHARED_MACHINE = (
    "figures from a shared 2-core machine (other Flink tests may run at the same time): compare within one run"
)
REGISTRATION_DELAY = "cluster.registration.error-delay"
FLINK_CONFIG = {
    "taskmanager.numberOfTaskSlots": "2",
    "execution.checkpointing.interval": "1 s",
    "web.refresh-interval": "200 ms",
    REGISTRATION_DELAY: "1 s",
}
# Milestones of a cluster start in Flink's own logs (JobManager and TaskManager), in the order they happen.
FLINK_MILESTONES = (
    ("JobManager JVM logging", "Starting StandaloneApplicationClusterEntryPoint (Version"),
    ("REST up", "Rest endpoint listening at"),
    ("job restoring", "Restoring job "),
    ("TaskManager registered", "Successful registration at resource manager"),
)
# A TaskManager that asks before the JobManager's ResourceManager runs waits cluster.registration.error-delay.
TM_RETRY = "Could not resolve ResourceManager address"

T = TypeVar("T")


def raw_config() -> dict[str, Any]:
    """The RawCluster configuration: FLINK_CONFIG plus what flinkops renders by default for the job."""
    return {
        **FLINK_CONFIG,
        "parallelism.default": PARALLELISM,
        "execution.shutdown-on-application-finish": "false",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, traces, output)")
    parser.add_argument(
        "--flink-registration-delay",
        action="store_true",
        help=f"leave {REGISTRATION_DELAY} at Flink's default (10 s) on both sides",
    )


def configure(args: argparse.Namespace) -> int:
    """Apply the common options; returns the number of rounds."""
    if args.flink_registration_delay:
        FLINK_CONFIG.pop(REGISTRATION_DELAY, None)
    interrupt_on_sigterm()
    return 1 if args.quick else int(args.rounds)


def settings_line() -> str:
    delay = FLINK_CONFIG.get(REGISTRATION_DELAY)
    shown = f"{delay} (Flink's default is 10 s)" if delay else "Flink's default, 10 s"
    return f"both sides: same job and Flink settings; {REGISTRATION_DELAY} {shown}"


# ---------------------------------------------------------------------------------------------- waiting


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = POLL_SECONDS) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class JobView:
    state: str | None
    all_running: bool  # the job RUNNING and every vertex RUNNING
    completed: int | None  # latest completed checkpoint id
    restored: int | None  # checkpoint or savepoint id the current execution restored from


class Rest:
    """One Flink REST client per URL, kept open across polls (creating one costs CPU the JVMs need)."""

    def __init__(self) -> None:
        self._clients: dict[str, FlinkRestClient] = {}

    def client(self, url: str) -> FlinkRestClient:
        found = self._clients.get(url)
        if found is None:
            found = self._clients[url] = FlinkRestClient(url, timeout=2.0)
        return found

    def view(self, url: str, job_id: str) -> JobView | None:
        client = self.client(url)
        try:
            job = client.job(job_id)
            completed = restored = None
            if job.state == "RUNNING":
                stats = client.checkpoints(job_id)
                completed = stats.latest_completed.checkpoint_id if stats.latest_completed else None
                restored = stats.latest_restored.checkpoint_id if stats.latest_restored else None
        except FlinkopsError:
            return None
        return JobView(job.state, job.state == "RUNNING" and job.all_vertices_running, completed, restored)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def wait_ready(rest: Rest, url: Callable[[], str | None], job_id: str, trace: Path, records: int) -> None:
    """Every task running, a checkpoint completed and ``records`` records processed (by the trace)."""

    def ready() -> bool:
        where = url()
        view = rest.view(where, job_id) if where else None
        return bool(view and view.all_running and view.completed) and max_traced(trace) >= records

    wait_for(f"job {job_id} to run with a checkpoint and {records} records", ready, timeout=240, interval=0.25)


def wait_restored(rest: Rest, url: Callable[[], str | None], job_id: Callable[[], str | None]) -> JobView:
    """The job (as ``job_id`` names it at each poll) RUNNING with every task, restored from a snapshot."""

    def restored() -> JobView | None:
        where, job = url(), job_id()
        view = rest.view(where, job) if where and job else None
        return view if view and view.all_running and view.restored is not None else None

    return wait_for("the job RUNNING with its state restored", restored, timeout=240)


def wait_finished(rest: Rest, url: Callable[[], str | None], job_id: str) -> None:
    def done() -> str | None:
        where = url()
        view = rest.view(where, job_id) if where else None
        return view.state if view and view.state in ("FINISHED", "FAILED", "CANCELED") else None

    state = wait_for(f"job {job_id} to finish", done, timeout=240, interval=0.5)
    if state != "FINISHED":
        raise RuntimeError(f"job {job_id} ended {state}, not FINISHED")


# ---------------------------------------------------------------------------------------------- traces and logs


def trace_names(trace: Path) -> set[str]:
    """The trace files present now (each task start opens a new one)."""
    return {p.name for p in trace.glob("trace-*.txt")} if trace.is_dir() else set()


def max_traced(trace: Path) -> int:
    return max((max(f.seqs) for f in trace_files(trace) if f.seqs), default=-1)


def trace_edges(trace: Path, old: set[str]) -> tuple[float | None, float | None]:
    """(last record processed by the tasks that wrote the ``old`` trace files, first record processed by any
    later task), as epoch seconds from the ``--trace-timestamps`` lines."""
    last_old: float | None = None
    first_new: float | None = None
    for f in trace_files(trace):
        stamps = [t / 1000 for t in f.times if t is not None]
        if not stamps:
            continue
        if f.name in old:
            last_old = max(stamps) if last_old is None else max(last_old, *stamps)
        else:
            first_new = min(stamps) if first_new is None else min(first_new, *stamps)
    return last_old, first_new


def since(moment: float, when: float | None) -> float | None:
    return None if when is None else when - moment


def log_time(line: str) -> float | None:
    """Epoch seconds of a ``YYYY-MM-DD HH:MM:SS,mmm`` log line prefix (Python and Flink logs, local time)."""
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
    if not match:
        return None
    return time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000


def first_logged(path: Path, needle: str, after: float) -> float | None:
    """When ``needle`` was first logged in ``path`` at or after ``after`` (epoch seconds)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if needle in line:
            when = log_time(line)
            if when is not None and when >= after - 0.001:
                return when
    return None


def flink_steps(log_dirs: Sequence[Path], moment: float) -> tuple[dict[str, float | None], bool]:
    """Seconds from ``moment`` to each of FLINK_MILESTONES in the Flink logs under ``log_dirs``, and whether a
    TaskManager had to retry its ResourceManager registration after ``moment``."""
    files = [f for d in log_dirs for f in sorted(d.glob("*.log*"))]
    steps: dict[str, float | None] = {}
    for label, needle in FLINK_MILESTONES:
        found = [t for f in files if (t := first_logged(f, needle, moment)) is not None]
        steps[label] = min(found) - moment if found else None
    retried = any(first_logged(f, TM_RETRY, moment) is not None for f in files)
    return steps, retried


# ---------------------------------------------------------------------------------------------- flinkops


def alive_as_recorded(proc: dict[str, Any]) -> bool:
    """The recorded pid still runs with the recorded kernel start time (never signal a recycled pid)."""
    pid, ticks = proc.get("pid"), proc.get("start_ticks")
    return isinstance(pid, int) and ticks is not None and start_ticks(pid) == ticks


class Flinkops:
    """The flinkops CLI against a private home, what it recorded there, and the cleanup of what it started."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.names: list[str] = []  # applied and not deleted yet

    def run(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, FLINKOPS_HOME=str(self.home))
        return subprocess.run(
            [sys.executable, "-m", "flinkops", *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    def ok(self, *args: str, timeout: float = 400) -> str:
        result = self.run(*args, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"flinkops {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}")
        return result.stdout

    def get(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("get", name, "-o", "json"))
        return data

    def record(self, name: str) -> dict[str, Any] | None:
        """The runtime's cluster record (``clusters/default/NAME/cluster.json``), or None while there is none."""
        try:
            data: dict[str, Any] = json.loads((self.home / "clusters" / "default" / name / "cluster.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    def jobmanagers(self, name: str) -> list[dict[str, Any]]:
        record = self.record(name) or {}
        return [p for p in record.get("processes", []) if p["role"] == "jobmanager"]

    def log_dirs(self, name: str) -> list[Path]:
        """Every process log directory of the deployment, including those of pre-started clusters (gen-N/)."""
        root = self.home / "clusters" / "default" / name
        return sorted([*root.glob("log/*"), *root.glob("gen-*/log/*")])

    def apply(self, path: Path, name: str, *, wait: bool = True) -> None:
        if name not in self.names:
            self.names.append(name)
        self.ok("apply", "-f", str(path), *(["--wait", "--timeout", "300"] if wait else []))

    def delete(self, name: str) -> None:
        self.ok("delete", name)
        self.names.remove(name)

    def controller_logged(self, name: str, text: str, after: float) -> float | None:
        """When the controller logged an action for deployment ``name`` starting with ``text``."""
        return first_logged(self.home / "controller.log", f"FlinkDeployment/default/{name}: {text}", after)

    def cleanup(self) -> None:
        """Delete what this run applied, stop the controller, then SIGKILL any recorded process still alive."""
        for name in list(self.names):
            with contextlib.suppress(Exception):
                self.run("delete", name, timeout=120)
        with contextlib.suppress(Exception):
            self.run("controller", "stop", timeout=60)
        records = [*self.home.glob("clusters/*/*/cluster.json"), *self.home.glob("clusters/*/*/prepared.json")]
        for path in [*records, self.home / "controller.pid"]:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for proc in data.get("processes", [data]):
                if alive_as_recorded(proc):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(proc["pid"]), signal.SIGKILL)


def deployment(
    work: Path,
    name: str,
    jar: Path,
    args: list[str],
    *,
    upgrade_mode: str,
    extra: dict[str, str] | None = None,
    jobmanagers: int = 1,
    entry_class: str = ENTRY_CLASS,
    parallelism: int = PARALLELISM,
) -> Path:
    """Write a FlinkDeployment running ``entry_class`` of ``jar`` (the VerifierJob by default) with ``args``;
    returns the file."""
    spec: dict[str, Any] = {
        "flinkVersion": "v2_2",
        "flinkConfiguration": {**FLINK_CONFIG, **(extra or {})},
        "job": {
            "jarURI": jar.as_uri(),
            "entryClass": entry_class,
            "args": args,
            "parallelism": parallelism,
            "upgradeMode": upgrade_mode,
        },
    }
    if jobmanagers > 1:
        spec["jobManager"] = {"replicas": jobmanagers}
    doc = {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": {"name": name}}
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}-{len(list(work.glob('*.yaml')))}.yaml"
    path.write_text(json.dumps({**doc, "spec": spec}, indent=1))  # JSON is YAML
    return path


def rest_of(jm: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{jm['rest_port']}"


# ---------------------------------------------------------------------------------------------- report


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, unit: str = "s", width: int = 6) -> str:
    return f"{value:{width}.2f} {unit}" if value is not None else f"{'n/a':>{width}}"


def verdict(ratio: float, goal: float = GOAL) -> str:
    if ratio <= goal:
        return f"meets the goal (≤ {goal})"
    return f"misses the goal (≤ {goal}) by {ratio - goal:.2f}"


def print_verified(title: str, labels: Mapping[str, str], results: Mapping[str, Sequence[Any]], width: int) -> None:
    """Each round's exact verifier verdict per scenario (rounds carry ``verified`` and ``summary``)."""
    print(f"\n{title}")
    for key, label in labels.items():
        marks = ["OK" if r.verified else "FAILED" for r in results[key]]
        print(f"  {label:<{width}} {' '.join(marks)}")
        for r in results[key]:
            print("    " + r.summary.replace("\n", "\n    "))


def print_steps(label: str, steps: Sequence[dict[str, float | None]], retries: int, final: tuple[str, float]) -> None:
    """One scenario's median step times (seconds after its start), in the order the steps were recorded."""
    names = list(dict.fromkeys(step for s in steps for step in s))
    parts = [f"{step} {fmt(median([s.get(step) for s in steps]), width=1)}" for step in names]
    parts.append(f"{final[0]} {fmt(final[1], width=1)}")
    print(f"  {label}:\n    " + ", ".join(parts))
    if retries:
        delay = FLINK_CONFIG.get(REGISTRATION_DELAY, "10 s")
        print(
            f"    in {retries} of {len(steps)} rounds the new TaskManager asked before the ResourceManager ran and "
            f"waited out one registration retry ({REGISTRATION_DELAY} {delay})"
        )


# ---------------------------------------------------------------------------------------------- signals


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` cleanup runs."""
    signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Let cleanup finish even when Ctrl-C is pressed again."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


# ---------------------------------------------------------------------------------------------- one run


R = TypeVar("R")


@dataclass
class Workspace:
    """Everything one benchmark run starts: a work directory, a flinkops home with its controller, a REST
    poller and the raw clusters of the floor. ``failed`` stays True until the run says otherwise."""

    base: Path
    ops: Flinkops
    rest: Rest
    clusters: list[RawCluster]
    failed: bool = True


@contextlib.contextmanager
def workspace(prefix: str, keep: bool, also_stop: Sequence[Callable[[], object]] = ()) -> Iterator[Workspace]:
    """Start the controller, yield the run's workspace, and stop everything it started on the way out (also
    on Ctrl-C or a failure); the work directory is kept when asked or when the run failed."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    ws = Workspace(base, Flinkops(base / "home"), Rest(), [])
    try:
        ws.ops.ok("controller", "start")
        yield ws
    finally:
        with no_interrupts():
            ws.rest.close()
            for cluster in ws.clusters:
                cluster.stop()
            ws.ops.cleanup()
            for stop in also_stop:
                stop()
            if keep or ws.failed:
                print(f"\nwork directory kept: {base}")
            else:
                shutil.rmtree(base, ignore_errors=True)


def run_rounds(
    scenarios: Mapping[str, Callable[[int], R]], rounds: int, describe: Callable[[str, R], str]
) -> dict[str, list[R]]:
    """Run every scenario once per round, each round starting with the next scenario so none always goes
    first, and print a line per round."""
    results: dict[str, list[R]] = {key: [] for key in scenarios}
    order = list(scenarios)
    for i in range(rounds):
        for key in order[i % len(order) :] + order[: i % len(order)]:
            results[key].append(scenarios[key](i))
        print(f"round {i + 1}: " + ", ".join(describe(key, rs[-1]) for key, rs in results.items()), flush=True)
    return results
