"""A fake Flink REST API on 127.0.0.1 for the live figures reader (``flink.figures``), answering with the shapes a
real Flink 2.2 JobManager gave for the counting test job (``tests/data/flink_rest_figures.json``, recorded from the
integration test's job: a source vertex and a keyed count chained with a sink), and resources recorded as running.

Called by: ``tests/unit/test_metrics_series.py``, ``tests/unit/test_operator_health.py``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from flinkops.api.models import FlinkDeployment, FlinkSessionJob

__all__ = ["JOB", "KAFKA_NAMES", "SHAPES", "SINK", "SOURCE", "TASK_METRICS", "FakeFlink", "answers_of", "running"]

SHAPES = json.loads((Path(__file__).parent.parent / "data" / "flink_rest_figures.json").read_text())
JOB = SHAPES["job"]["jid"]
SOURCE, SINK = (v["id"] for v in SHAPES["job"]["vertices"])
#: A Kafka source's operator metrics as a real KafkaSource lists them for its vertex (the names seen on the bronze
#: job: prefixed by the operator's name; ``pendingRecords`` is the FLIP-27 source metric).
KAFKA_NAMES = [
    "Source__orders.KafkaSourceReader.KafkaConsumer.records-lag-max",
    "Source__orders.KafkaSourceReader.KafkaConsumer.records-consumed-rate",
    "Source__orders.pendingRecords",
    *(f"Source__orders.KafkaSourceReader.topic.orders.partition.{n}.currentOffset" for n in range(4)),
    "Source__orders.KafkaSourceReader.topic.orders.partition.2.committedOffset",
]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class FakeFlink:
    """A Flink REST API on 127.0.0.1: ``answers`` maps a path to a JSON answer; a vertex's aggregated metrics
    (``.../subtasks/metrics?get=a,b&agg=...``) are answered from ``answers[path + "#agg"]`` (metric -> aggregates),
    only the metrics asked for, as Flink does. ``delay`` seconds before each answer. Counts requests and the most
    in flight at once."""

    def __init__(self, answers: dict[str, Any], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests += 1
                    owner.in_flight += 1
                    owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                try:
                    time.sleep(owner.delay)
                    path, _, query = self.path.partition("?")
                    params = dict(unquote(p).partition("=")[::2] for p in query.split("&") if p)
                    found = owner.answers.get(path)
                    aggregates = owner.answers.get(path + "#agg")
                    if "get" in params and aggregates is not None:
                        found = [{"id": m, **aggregates[m]} for m in params["get"].split(",") if m in aggregates]
                    body = json.dumps(found if found is not None else {"errors": ["Not found"]}).encode()
                    self.send_response(200 if found is not None else 404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a reader asks many things at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answers_of(job_id: str = JOB, *, kafka: bool = False) -> dict[str, Any]:
    """The recorded answers for job ``job_id`` (its source vertex reading Kafka when ``kafka``). Flink's answers
    for the source operator's and the sink writer's own records/s were not recorded: they are the task's."""
    base = f"/jobs/{job_id}"
    found: dict[str, Any] = {
        base: {**SHAPES["job"], "jid": job_id},
        f"{base}/metrics": SHAPES["restarts"],
        f"{base}/checkpoints": SHAPES["checkpoints"],
    }
    for vid in (SOURCE, SINK):
        url = f"{base}/vertices/{vid}/subtasks/metrics"
        names = [row["id"] for row in SHAPES[f"names_{vid}"]]
        aggregates = {row["id"]: {"sum": row["sum"], "max": row["max"]} for row in SHAPES[f"agg_{vid}"]}
        # Counters since the tasks started (not recorded: made up, consistent with the per-second figures).
        aggregates["numRecordsIn"] = {"sum": 60_000.0, "max": 30_000.0}
        aggregates["accumulateBusyTimeMs"] = {"sum": 90_000.0, "max": 50_000.0}
        aggregates["accumulateBackPressuredTimeMs"] = {"sum": 0.0, "max": 0.0}
        if vid == SOURCE:
            aggregates["Source__numbers.numRecordsOutPerSecond"] = aggregates["numRecordsOutPerSecond"]
            aggregates["Source__numbers.numRecordsOut"] = {"sum": 61_000.0, "max": 31_000.0}
            assert "Source__numbers.numRecordsOut" in names  # listed by the real Flink
        else:
            aggregates["Sink__Writer.numRecordsInPerSecond"] = aggregates["numRecordsInPerSecond"]
        if kafka and vid == SOURCE:
            names += KAFKA_NAMES
            aggregates["Source__orders.pendingRecords"] = {"sum": 1200.0, "max": 700.0}
            aggregates["Source__orders.KafkaSourceReader.KafkaConsumer.records-lag-max"] = {"sum": 900.0, "max": 650.0}
        found[url] = [{"id": name} for name in names]
        found[url + "#agg"] = aggregates
    return found


TASK_METRICS = (
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "busyTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
)


def running(resource: FlinkDeployment | FlinkSessionJob, rest_url: str | None, job_id: str = JOB) -> Any:
    """``resource`` as the controller records it once its job runs (STABLE, RUNNING, its JobManager READY)."""
    status: dict[str, Any] = {
        "lifecycleState": "STABLE",
        "jobStatus": {
            "jobId": job_id,
            "jobName": "counting",
            "state": "RUNNING",
            "checkpointInfo": {"lastCheckpoint": {"timeStamp": int((time.time() - 12) * 1000)}},
            "savepointInfo": {
                "lastSavepoint": {"timeStamp": int((time.time() - 3600) * 1000), "location": "file:///sp/1"},
                "savepointHistory": [{"timeStamp": int((time.time() - 3600) * 1000), "location": "file:///sp/1"}],
            },
        },
        "deploymentHistory": [{"generation": 1, "reason": "first-deploy"}, {"generation": 2, "reason": "upgrade"}],
    }
    if isinstance(resource, FlinkDeployment):
        status["jobManagerDeploymentStatus"] = "READY"
        status["clusterInfo"] = {"rest-url": rest_url, "flink-version": "2.2.0"} if rest_url else {}
    return type(resource).model_validate({**resource.model_dump(by_alias=True, mode="json"), "status": status})
