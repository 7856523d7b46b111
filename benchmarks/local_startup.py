"""Local startup: flinkops apply → job RUNNING, against the raw Flink scripts doing the same, in one run.

Baseline: the distribution's own ``standalone-job.sh`` + ``taskmanager.sh`` started by hand (no flinkops code)
with the same PyFlink job, configuration and parallelism, timed until the REST API reports the job RUNNING.
flinkops: ``flinkops apply -f`` with the controller already running, timed until ``status.jobStatus.state``
is RUNNING (what a user waits for). Rounds alternate to spread machine noise over both.

Also measured: ``flinkops get`` wall time (baseline: a bare ``python -c pass`` start, the floor for any
Python CLI) and the controller daemon's CPU while one deployment is stable (idle).

The floor runs the scripts as a user would; flinkops starts the same JVMs without them (one ``java`` per
process, memory flags computed in Python, class-data sharing once an archive is recorded: the first flinkops
round of a fresh ``~/.cache/flinkops/cds`` records it and runs without). ``FLINKOPS_JVM_LAUNCH=scripts`` or
``FLINKOPS_CDS=off`` in the environment measure flinkops without either.

Run: ``make bench`` or ``.venv/bin/python benchmarks/local_startup.py [--rounds N]``.
Goals: apply→RUNNING ≤ 0.9 times the raw-scripts floor; get ≤ 0.2 s; idle controller CPU well under 1% of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.rawflink import RawCluster  # noqa: E402

EXAMPLE = ROOT / "examples" / "fraud-scoring"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"


def job_args(out: Path) -> list[str]:
    return ["-py", str(EXAMPLE / "fraud_scoring.py"), "--output", out.as_uri()]


def wait_running(rest: str, timeout: float = 180) -> float:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                jobs = client.get(f"{rest}/jobs/overview").json().get("jobs", [])
                if any(j["state"] == "RUNNING" for j in jobs):
                    return time.monotonic()
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
    raise TimeoutError(f"no RUNNING job at {rest}")


def raw_round(work: Path) -> float:
    cluster = RawCluster(
        work,
        slots=2,
        python=True,
        extra_config={
            "python.client.executable": sys.executable,
            "python.executable": sys.executable,
            "execution.checkpointing.interval": "10 s",
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.memory.process.size": "1280m",
            "parallelism.default": 2,
        },
    )
    start = time.monotonic()
    cluster.start_application(PYTHON_DRIVER, job_args(work / "out"))
    try:
        return wait_running(cluster.rest_url) - start
    finally:
        cluster.stop()


def flinkops(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FLINKOPS_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *args], env=env, capture_output=True, text=True, check=True
    )


def flinkops_round(home: Path, work: Path, index: int) -> float:
    doc = yaml.safe_load((EXAMPLE / "fraud-scoring.yaml").read_text())
    name = f"bench-{index}"
    doc["metadata"]["name"] = name
    doc["spec"]["job"]["args"] = job_args(work / "out")
    work.mkdir(parents=True, exist_ok=True)
    path = work / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc))
    from flinkops.ports import ResourceKey
    from flinkops.stores.sqlite import SqliteStore

    store = SqliteStore(home / "flinkops.db")
    key = ResourceKey("FlinkDeployment", "default", name)
    start = time.monotonic()
    flinkops(home, "apply", "-f", str(path))
    deadline = start + 180
    while time.monotonic() < deadline:
        resource = store.get(key)
        if resource and resource.status and resource.status.job_status.state == "RUNNING":
            elapsed = time.monotonic() - start
            break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"{name} did not reach RUNNING")
    flinkops(home, "delete", name)
    return elapsed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], env: dict[str, str], runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        samples.append(time.monotonic() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="flinkops-bench-"))
    home = base / "home"
    raw_times: list[float] = []
    ops_times: list[float] = []
    from flinkops.runtimes.local.launch import launch_mode

    cds = os.environ.get("FLINKOPS_CDS", "on")
    print(f"flinkops starts its JVMs: {launch_mode()}, class-data sharing: {cds}", flush=True)
    try:
        flinkops(home, "controller", "start")
        for i in range(args.rounds):
            raw_times.append(raw_round(base / f"raw-{i}"))
            ops_times.append(flinkops_round(home, base / f"ops-{i}", i))
            print(f"round {i + 1}: raw scripts {raw_times[-1]:.2f}s, flinkops {ops_times[-1]:.2f}s", flush=True)

        raw, ops = statistics.median(raw_times), statistics.median(ops_times)
        print(f"\napply → job RUNNING (median of {args.rounds} rounds)")
        print(f"  baseline (raw distribution scripts): {raw:6.2f} s")
        print(f"  flinkops apply:                      {ops:6.2f} s")
        print(f"  ratio flinkops / baseline:           {ops / raw:6.2f}   (goal ≤ 0.9)")

        # An idle controller with one stable deployment.
        doc = yaml.safe_load((EXAMPLE / "fraud-scoring.yaml").read_text())
        doc["spec"]["job"]["args"] = job_args(base / "idle-out")
        (base / "idle.yaml").write_text(yaml.safe_dump(doc))
        flinkops(home, "apply", "-f", str(base / "idle.yaml"), "--wait", "--timeout", "240")
        env = dict(os.environ, FLINKOPS_HOME=str(home))
        get_time = timed([sys.executable, "-m", "flinkops", "get"], env)
        floor = timed([sys.executable, "-c", "pass"], env)
        print("\nflinkops get wall time (median of 7)")
        print(f"  baseline (python -c pass):  {floor:6.3f} s")
        print(f"  flinkops get:               {get_time:6.3f} s   (goal ≤ 0.2 s)")
        print(f"  ratio:                      {get_time / floor:6.2f}")

        pid = int(json.loads((home / "controller.pid").read_text())["pid"])
        before = cpu_seconds(pid)
        time.sleep(args.idle_seconds)
        used = cpu_seconds(pid) - before
        print(f"\ncontroller CPU with one STABLE deployment over {args.idle_seconds:.0f} s")
        print(f"  {used:.2f} CPU-s = {100 * used / args.idle_seconds:.2f}% of one core")
    finally:
        subprocess.run(
            [sys.executable, "-m", "flinkops", "delete", "fraud-scoring"],
            env=dict(os.environ, FLINKOPS_HOME=str(home)),
            capture_output=True,
        )
        subprocess.run(
            [sys.executable, "-m", "flinkops", "controller", "stop"],
            env=dict(os.environ, FLINKOPS_HOME=str(home)),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
