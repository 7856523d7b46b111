"""A batch job through Airflow against the same job run directly, on the local runtime: what the Airflow
provider costs, and how soon a task learns that its job ended.

Each round runs the example conversions job (a small day of files) twice:

* **direct** (the baseline): ``flinkops.service.apply``, then following the resource until its outcome is
  ``finished`` (what ``flinkops apply`` plus waiting for the end does, in this process);
* **Airflow**: a DAG run of ``flinkops_job`` (tests/airflow/dags) on the real scheduler, dag-processor,
  triggerer and api-server, the task deferred to ``FlinkDeploymentTrigger``; from the trigger request to the run's
  success.

Printed per round and as medians: Airflow's end-to-end time over the direct one (ratio and seconds), and the
latency from the job's FINISHED (Flink's end time, recorded in the run history) to the task's success (its end
date), whose goal is <= 2 s (the existing provider's sensor pokes every 60 s and asks the wrong question).

Run with the Airflow environment: ``./.venv-airflow/bin/python benchmarks/airflow_batch.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.airflow import AirflowHome  # noqa: E402
from support.examples import example_module  # noqa: E402

RECORDS, HOURS, PARTNERS = 50_000, 6, 8


def _job(jar: Path, raw: Path, out: Path, name: str) -> str:
    return f"""\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: {name}
spec:
  flinkVersion: v2_2
  flinkConfiguration:
    execution.runtime-mode: BATCH
    taskmanager.numberOfTaskSlots: "1"
  jobManager:
    resource: {{memory: "1024m", cpu: 1}}
  taskManager:
    resource: {{memory: "1024m", cpu: 1}}
  job:
    jarURI: {jar}
    entryClass: flinkops.examples.ConversionsBatchJob
    args: ["--input", "file://{raw}", "--output", "file://{out}"]
    parallelism: 1
    upgradeMode: stateless
"""


def direct(flinkops_home: Path, jar: Path, raw: Path, out: Path, name: str) -> tuple[float, float]:
    """Apply the job and follow it until finished: (seconds from apply to the outcome, FINISHED -> outcome)."""
    from flinkops.ports import ResourceKey
    from flinkops.service.applying import apply
    from flinkops.service.changes import request_deletion, wait_deleted
    from flinkops.service.following import follow
    from flinkops.service.inputs import load_text
    from flinkops.service.outcomes import outcome
    from flinkops.service.target import LocalTarget

    target = LocalTarget(flinkops_home)
    started = time.time()
    (resource,) = load_text(target, _job(jar, raw, out, name), "bench.yaml", ROOT)
    apply(target, [resource])
    key = ResourceKey("FlinkDeployment", "default", name)
    for current in follow(target, key, timeout=600):
        found = outcome(current, "finished", 1)
        if found is not None:
            seen = time.time()
            assert found.state == "finished", found
            request_deletion(target, key)
            wait_deleted(target, key, 120)
            assert found.ended_at_ms is not None
            return seen - started, seen - found.ended_at_ms / 1000
    raise RuntimeError("the direct run did not finish in 10 minutes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from flinkops.dev.example_jobs import build_example_jobs
    from flinkops.wiring.daemon import stop_daemon

    jar = build_example_jobs()
    work = Path(tempfile.mkdtemp(prefix="airflow-bench-"))
    flinkops_home = work / "flinkops"
    generate = example_module("conversions-batch/generate.py")
    raw = work / "raw"
    generate.generate_files(raw, RECORDS, HOURS, PARTNERS, 7, parts_per_hour=1)

    connection = {"conn_type": "flinkops", "extra": {"target": "local", "home": str(flinkops_home)}}
    home = AirflowHome(
        work / "airflow",
        parallelism=4,
        extra_env={"AIRFLOW_CONN_FLINKOPS_DEFAULT": json.dumps(connection), "FLINKOPS_HOME": str(flinkops_home)},
    )
    shutil.copy(ROOT / "tests" / "airflow" / "dags" / "flinkops_jobs.py", home.dags_folder / "flinkops_jobs.py")
    home.migrate()
    rows: list[tuple[float, float, float, float]] = []
    try:
        with home.cluster() as cluster:
            api = cluster.api
            api.wait_for_dag("flinkops_job")
            print(f"Airflow ready in {cluster.started_seconds:.1f} s; {args.rounds} rounds of {RECORDS} records")
            print(f"{'round':>5} {'direct s':>9} {'airflow s':>10} {'ratio':>6} {'FINISHED->seen s':>17} "
                  f"{'FINISHED->task success s':>25}")  # fmt: skip
            for index in range(args.rounds):
                base, base_lag = direct(flinkops_home, jar, raw, work / f"direct-{index}", f"direct-{index}")
                conf = {
                    "name": f"airflow-{index}",
                    "jar": str(jar),
                    "entry": "flinkops.examples.ConversionsBatchJob",
                    "args": ["--input", f"file://{raw}", "--output", f"file://{work / f'airflow-{index}'}"],
                    "batch": True,
                }
                started = time.time()
                run_id = api.trigger("flinkops_job", conf=conf)
                state = api.wait_for_run("flinkops_job", run_id, timeout=600)
                assert state == "success", state
                task = api.request("GET", f"/dags/flinkops_job/dagRuns/{quote(run_id, safe='')}/taskInstances/run")
                ended = datetime.fromisoformat(task["end_date"]).timestamp()
                value = api.xcom("flinkops_job", run_id, "run")
                lag = ended - value["ended_at_ms"] / 1000
                took = ended - started
                rows.append((base, took, base_lag, lag))
                print(f"{index:>5} {base:>9.1f} {took:>10.1f} {took / base:>6.2f} {base_lag:>17.2f} {lag:>25.2f}")
    finally:
        stop_daemon(flinkops_home)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(r[0] for r in rows)
    took = statistics.median(r[1] for r in rows)
    lag = statistics.median(r[3] for r in rows)
    print(
        f"\nmedian: direct {base:.1f} s, through Airflow {took:.1f} s: ratio {took / base:.2f} "
        f"(+{took - base:.1f} s per DAG run)"
    )
    print(f"median FINISHED -> task success: {lag:.2f} s (goal <= 2 s; direct FINISHED -> seen "
          f"{statistics.median(r[2] for r in rows):.2f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
