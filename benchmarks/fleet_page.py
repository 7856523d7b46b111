"""The fleet page with 500 deployments: the overview rendered over HTTP, against ``flinkops get -A -o json`` of the
same store, in the same run.

A fresh home holds 500 FlinkDeployments across five namespaces (plus a session cluster and a session job), each
with the status a controller records (lifecycle, job state, the last checkpoint and savepoint, runs, restarts,
errors on every tenth: ``tests/support/fleet.py``). ``flinkops ui --port 0`` serves the page in its own process,
as a user starts it; this process asks for ``/`` over keep-alive HTTP ``--requests`` times after a warm-up and
takes the median. The baseline is the CLI a person would otherwise use: ``flinkops get -A -o json`` of the same
store, ``--runs`` times (a whole process each, as a user pays it), median.

Goal: the overview renders in ≤ 200 ms (median). The ratio page / ``get -o json`` is printed too.

Run: ``.venv/bin/python benchmarks/fleet_page.py [--count 500] [--requests 30] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from support.fleet import serving_ui, store_fleet  # noqa: E402
from support.service import TestTarget  # noqa: E402

GOAL_MS = 200.0


def env_for(home: Path) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return dict(os.environ, FLINKOPS_HOME=str(home), PYTHONPATH=path)


def baseline(home: Path, runs: int) -> tuple[float, int]:
    """Median ms of ``flinkops get -A -o json`` and the size of its output."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "flinkops", "get", "-A", "-o", "json"],
            env=env_for(home),
            capture_output=True,
            check=True,
        )
        times.append((time.perf_counter() - started) * 1000)
        size = len(done.stdout)
    return statistics.median(times), size


def page(home: Path, requests: int) -> tuple[float, float, int]:
    """Median and worst ms of ``GET /`` from ``flinkops ui`` in its own process, and the page's size."""
    with serving_ui(env_for(home)) as address:
        url = f"{address}/"
        times, size = [], 0
        with httpx.Client(timeout=30) as client:
            for _ in range(3):  # warm-up: templates compiled, store connection opened
                client.get(url).raise_for_status()
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                size = len(response.content)
        return statistics.median(times), max(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flinkops-fleet-bench-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        store_fleet(TestTarget(home).store(), args.count, ("payments", "ads", "risk", "lake", "search"))
        print(f"store: {args.count} deployments + a session cluster and job, written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        base_ms, base_size = baseline(home, args.runs)
        median_ms, worst_ms, size = page(home, args.requests)
    print(f"baseline flinkops get -A -o json: median {base_ms:.1f} ms over {args.runs} runs ({base_size} bytes)")
    print(f"fleet page GET /: median {median_ms:.1f} ms, worst {worst_ms:.1f} ms over {args.requests} requests "
          f"({size} bytes of HTML)")  # fmt: skip
    print(f"ratio page / get -o json: {median_ms / base_ms:.2f}")
    ok = median_ms <= GOAL_MS
    print(f"goal: overview ≤ {GOAL_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
