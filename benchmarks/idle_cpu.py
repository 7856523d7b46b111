"""The controller's idle CPU: what a daemon costs while every deployment it manages is STABLE.

Measured in one run, on one controller daemon:

* baseline: the daemon with no deployment (its poll of the store and the runtime, nothing else);
* one STABLE deployment;
* ``--count`` STABLE deployments (ten by default).

Each deployment is the VerifierJob (``tests/jobs``), unbounded at 1 record/s on one key with checkpoints every
10 s, on a small JobManager and one small TaskManager, so ten clusters fit on this machine next to each other.
CPU is the daemon process's user + system time from ``/proc/<pid>/stat`` over ``--seconds`` of wall time, as a
percentage of one core. The Flink JVMs are not counted: they are the job, not the control plane.

Run: ``.venv/bin/python benchmarks/idle_cpu.py [--count 10] [--seconds 60]``.
Goal: ten STABLE deployments ≤ 0.5 % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.testjobs import testjobs_jar  # noqa: E402
from support.verifier import ENTRY_CLASS, job_args  # noqa: E402

SMALL = {
    "taskmanager.numberOfTaskSlots": "1",
    "execution.checkpointing.interval": "10 s",
    "jobmanager.memory.process.size": "640m",
    "jobmanager.memory.jvm-metaspace.size": "128m",
    "taskmanager.memory.process.size": "768m",
    "taskmanager.memory.managed.size": "0",
    "taskmanager.memory.jvm-metaspace.size": "128m",
}


def flinkops(home: Path, *args: str, timeout: float = 600) -> str:
    env = dict(os.environ, FLINKOPS_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-m", "flinkops", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"flinkops {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def deployment(work: Path, name: str, jar: Path) -> Path:
    doc = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {
            "flinkVersion": "v2_2",
            "flinkConfiguration": SMALL,
            "job": {
                "jarURI": jar.as_uri(),
                "entryClass": ENTRY_CLASS,
                "args": job_args(work / name, records=0, rate=1, keys=1, checkpoint_interval_ms=10_000),
                "parallelism": 1,
                "upgradeMode": "last-state",
            },
        },
    }
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(doc))
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_percent(pid: int, seconds: float) -> float:
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="flinkops-idle-"))
    home = base / "home"
    jar = testjobs_jar()
    names = [f"idle-{i}" for i in range(args.count)]
    try:
        flinkops(home, "controller", "start")
        pid = int(json.loads((home / "controller.pid").read_text())["pid"])
        time.sleep(2)  # past the daemon's start-up
        floor = idle_percent(pid, args.seconds)
        print(f"no deployment:            {floor:5.2f} % of one core (baseline)", flush=True)

        flinkops(home, "apply", "-f", str(deployment(base, names[0], jar)), "--wait", "--timeout", "300")
        one = idle_percent(pid, args.seconds)
        print(f"1 STABLE deployment:      {one:5.2f} % of one core", flush=True)

        for name in names[1:]:
            flinkops(home, "apply", "-f", str(deployment(base, name, jar)))
        for name in names:
            flinkops(home, "apply", "-f", str(base / f"{name}.yaml"), "--wait", "--timeout", "600")
        many = idle_percent(pid, args.seconds)
        print(f"{args.count} STABLE deployments:    {many:5.2f} % of one core   (goal ≤ 0.5 %)")
        print(f"per deployment above the baseline: {(many - floor) / args.count:5.3f} % of one core")
    finally:
        for name in names:
            subprocess.run(
                [sys.executable, "-m", "flinkops", "delete", name],
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
