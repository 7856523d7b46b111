"""The production-engineering watchdog: every 5 minutes, how many runs of each DAG failed in the last window.

It asks Airflow's REST API (an Airflow 3 task may not open the metadata database), then publishes the counts two
ways, so either alerting stack sees them:

* StatsD, through Airflow's own metrics client (``[metrics] statsd_on``): a gauge ``FailedDagCount`` (every DAG
  together) and ``FailedDagCount.<dag_id>`` per DAG, under Airflow's ``statsd_prefix``;
* a Prometheus gauge ``airflow_failed_dag_count{dag_id="..."}`` (and ``airflow_failed_dag_count_total``) written
  atomically in the text format to ``FLINKOPS_WATCHDOG_PROM_FILE`` (default
  ``$AIRFLOW_HOME/metrics/watchdog.prom``), for node-exporter's textfile collector or any file-reading scrape.
  Every DAG the API knows gets a value (0 when none failed), so a recovered DAG's alert clears.

The API is the ``airflow_api`` connection: its host is the API server's base URL (``http://127.0.0.1:8080``);
with a login and password it asks ``POST /auth/token`` for a token, without them ``GET /auth/token`` (the simple
auth manager's all-admins mode). The window is the DAG's ``window_minutes`` param (default 5, its schedule).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pendulum
from airflow.sdk import BaseHook, Param, dag, task

START = pendulum.datetime(2024, 1, 1, tz="UTC")
WATCHDOG = "flinkops_watchdog"


def _api(conn_id: str = "airflow_api") -> httpx.Client:
    conn = BaseHook.get_connection(conn_id)
    base = (conn.host or "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"{conn.conn_type if conn.conn_type in ('http', 'https') else 'http'}://{base}"
        if conn.port:
            base += f":{conn.port}"
    client = httpx.Client(base_url=base, timeout=30.0, trust_env=False)
    if conn.login:
        answer = client.post("/auth/token", json={"username": conn.login, "password": conn.password or ""})
    else:
        answer = client.get("/auth/token")
    answer.raise_for_status()
    client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return client


def _pages(client: httpx.Client, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        answer = client.get(path, params={**params, "limit": 100, "offset": len(found)})
        answer.raise_for_status()
        body = answer.json()
        found.extend(body[key])
        if not body[key] or len(found) >= body.get("total_entries", 0):
            return found


def failed_counts(client: httpx.Client, start: datetime, end: datetime) -> dict[str, int]:
    """Failed runs per DAG that ended in ``[start, end)``; every other DAG the API knows at 0."""
    counts = {d["dag_id"]: 0 for d in _pages(client, "/api/v2/dags", "dags", {}) if d["dag_id"] != WATCHDOG}
    runs = _pages(
        client,
        "/api/v2/dags/~/dagRuns",
        "dag_runs",
        {"state": "failed", "end_date_gte": start.isoformat(), "end_date_lt": end.isoformat()},
    )
    for run in runs:
        if run["dag_id"] != WATCHDOG:
            counts[run["dag_id"]] = counts.get(run["dag_id"], 0) + 1
    return counts


def publish(counts: dict[str, int]) -> Path:
    """StatsD gauges through Airflow's metrics client, and the Prometheus text file; the file's path."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.0-3.1
        from airflow.stats import Stats  # type: ignore[no-redef,unused-ignore]

    Stats.gauge("FailedDagCount", sum(counts.values()))
    for dag_id, count in counts.items():
        Stats.gauge(f"FailedDagCount.{dag_id}", count)
    registry = CollectorRegistry()
    per_dag = Gauge("airflow_failed_dag_count", "Failed DAG runs in the last window", ["dag_id"], registry=registry)
    for dag_id, count in counts.items():
        per_dag.labels(dag_id=dag_id).set(count)
    total = Gauge("airflow_failed_dag_count_total", "Failed DAG runs in the last window, all DAGs", registry=registry)
    total.set(sum(counts.values()))
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    path = Path(os.environ.get("FLINKOPS_WATCHDOG_PROM_FILE", home / "metrics" / "watchdog.prom"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # written to a temporary file, then renamed: never read half-written
    return path


@dag(
    dag_id=WATCHDOG,
    schedule="*/5 * * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    params={"window_minutes": Param(5, type="integer", minimum=1)},
    tags=["flinkops", "monitoring"],
)
def flinkops_watchdog() -> None:
    @task
    def count_failed_dag_runs(params: dict[str, Any] | None = None) -> dict[str, int]:
        window = timedelta(minutes=int((params or {}).get("window_minutes", 5)))
        end = datetime.now(UTC)
        client = _api()
        try:
            counts = failed_counts(client, end - window, end)
        finally:
            client.close()
        path = publish(counts)
        failing = {dag_id: n for dag_id, n in counts.items() if n}
        print(f"failed DAG runs in the last {window}: {failing or 'none'} (Prometheus file {path})")
        return counts

    count_failed_dag_runs()


flinkops_watchdog()
