"""`make demo-airflow`: one run of the hourly conversions DAG on a real Airflow 3 and the local runtime.

It builds the example jobs' jar, writes a small day of conversions as files, makes an Airflow home on SQLite
(`.airflow-demo/`, nothing it starts listens beyond 127.0.0.1) whose `flinkops_default` connection targets this
checkout's FLINKOPS_HOME, and runs `airflow dags test conversions_hourly` (the task, its trigger inline, as a
worker and a triggerer would). Then it prints the task's state, the job's result as the task returned it, and
that no Flink process of the run is left. Run by ./.venv-airflow/bin/python (scripts/demo_airflow.sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".airflow-demo"
EXAMPLES = ROOT / "providers" / "airflow" / "src" / "flinkops_airflow" / "example_dags"
DAG = "conversions_hourly"


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def airflow_env(home: Path, flinkops_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    connection = {"conn_type": "flinkops", "extra": {"target": "local", "home": str(flinkops_home)}}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
            "AIRFLOW_CONN_FLINKOPS_DEFAULT": json.dumps(connection),
            "FLINKOPS_HOME": str(flinkops_home),
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "true",
        }
    )
    return env


def flink_processes(flinkops_home: Path, name: str) -> list[int]:
    marker = f"{flinkops_home}/clusters/ads/{name}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def main() -> int:
    from flinkops.dev.example_jobs import build_example_jobs

    flinkops_home = Path(os.environ.get("FLINKOPS_HOME", ROOT / ".flinkops")).resolve()
    airflow = Path(sys.executable).parent / "airflow"
    step("Building the example jobs' jar (cached)")
    jar = build_example_jobs()
    print(jar)

    step("Writing a day of conversions as files (200,000 records, 24 hours, 20 partners)")
    raw, hourly = DEMO / "conversions" / "raw", DEMO / "conversions" / "hourly"
    shutil.rmtree(DEMO / "conversions", ignore_errors=True)
    spec = importlib.util.spec_from_file_location("generate", ROOT / "examples" / "conversions-batch" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate_files(raw, 200_000, 24, 20, 7, parts_per_hour=1)

    step(f"An Airflow home on SQLite in {DEMO.relative_to(ROOT)}/ (the DAG and its YAML in dags/)")
    home = DEMO / "airflow"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    for name in ("conversions_hourly.py", "conversions-batch.yaml"):
        shutil.copy(EXAMPLES / name, home / "dags" / name)
    env = airflow_env(home, flinkops_home)
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)

    step(f"airflow dags test {DAG} (creates the cluster, waits for the job's end, deletes the cluster)")
    conf = {"jar": str(jar), "input": f"file://{raw}", "output": f"file://{hourly}"}
    started = time.monotonic()
    done = subprocess.run(
        [str(airflow), "dags", "test", DAG, "--conf", json.dumps(conf)], env=env, capture_output=True, text=True
    )
    took = time.monotonic() - started
    with sqlite3.connect(home / "airflow.db") as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG,)
        ).fetchone()
        tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)).fetchall())
        row = db.execute(
            "SELECT value FROM xcom WHERE run_id = ? AND task_id = 'conversions' AND key = 'return_value'", (run_id,)
        ).fetchone()
    result = json.loads(row[0]) if row and row[0] else {}
    print(f"DAG run {run_id}: {state} in {took:.0f} s; tasks: {tasks}")
    if state != "success":
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
        return 1
    print(
        f"job {result['job_id']} {result['job_state']} in {result['duration_ms'] / 1000:.1f} s (Flink's run time); "
        f"counters: {result['accumulators']}"
    )
    lines = sum(len(p.read_text().splitlines()) for p in hourly.rglob("part-*"))
    print(f"{lines} hourly totals written under {hourly.relative_to(ROOT)}/")
    left = flink_processes(flinkops_home, result["name"])
    print("no Flink process of the run is left" if not left else f"Flink processes still running: {left}")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
