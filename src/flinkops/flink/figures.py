"""Live figures of running jobs, read from Flink's REST API: records/s in and out, busy and back-pressured time,
Kafka lag, restarts, checkpoint counts.

:class:`FiguresReader` reads many jobs at once (one asyncio task per job, each vertex's metrics asked
concurrently) and is bounded: every request has a short timeout, the whole read a deadline, and answers are kept
for ``ttl`` seconds, so a Prometheus scrape, the fleet page and ``flinkops top`` asking within that time cost
Flink nothing more. A job whose JobManager does not answer (or answers with an error) reads as ``None``: its
figures are *unknown*, never zero. A single figure Flink has not measured yet (a metric missing or ``NaN``, as
right after a start) is ``None`` too.

What is read, per job (``/jobs/:id`` first, the rest concurrently):

* ``/jobs/:id``: state and vertices (id, name, parallelism) and the plan's edges (which vertices are sources,
  which are sinks);
* ``/jobs/:id/vertices/:v/subtasks/metrics?get=...&agg=sum,max``: the tasks' ``numRecordsInPerSecond``,
  ``numRecordsOutPerSecond``, ``busyTimeMsPerSecond``, ``backPressuredTimeMsPerSecond``, and the operator metrics
  found in the vertex's list of metric names (``.../subtasks/metrics``, listed again every ``relist`` seconds,
  every 3 s in a vertex's first minute, while its operators register their metrics):
  source operators' ``numRecordsOutPerSecond``, sink writers' ``numRecordsInPerSecond``, a Kafka reader's
  ``pendingRecords`` and ``records-lag-max``;
* ``/jobs/:id/metrics?get=numRestarts`` and ``/jobs/:id/checkpoints`` (counts, newest completed).

A job's *records/s in* is what its source operators emit (``Source__<name>.numRecordsOutPerSecond``; without one,
the source vertices' task ``numRecordsOutPerSecond``); its *records/s out* is what its sink writers take in (the
Sink V2 ``<name>Writer.numRecordsInPerSecond``; without one, the last vertices' task ``numRecordsInPerSecond``).
Task-level figures alone would say 0 for a job chained into one vertex (a source chained to its sink emits nothing
downstream), as the bronze job is. Busy and back-pressure ratios are the busiest subtask's share of a second
(0..1), the job's the highest of its vertices: the bottleneck is what matters. Kafka lag is the larger of the sum
over the job's Kafka source subtasks of ``pendingRecords`` (the FLIP-27 source metric) and the largest
``records-lag-max`` (the Kafka consumer's own): on a real job reading a backlog at 17k records/s,
``pendingRecords`` said 0 while ``records-lag-max`` said 544k.

Callers: ``wiring.metrics`` (the controller's and operator's scrape) and ``service.figures`` (the fleet page,
``flinkops top``). Async callers (an aiohttp page) use :meth:`FiguresReader.read_async`; threads use
:meth:`FiguresReader.read`.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from flinkops.flink.rest import _tls_context, checkpoint_stats
from flinkops.ports.flink import JobAddress, JobFigures, VertexFigures

__all__ = ["FiguresReader", "JobAddress", "JobFigures", "VertexFigures"]

_TASK_METRICS = (
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "busyTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
    # counters since the task started: rates over any interval from two reads (the per-second figures above are
    # Flink's averages over its last 60 s, which lag a change and read low for a task's first minute)
    "numRecordsIn",
    "accumulateBusyTimeMs",
    "accumulateBackPressuredTimeMs",
)
_KAFKA_MARKERS = ("KafkaSourceReader", "KafkaConsumer")
_PENDING = "pendingRecords"
_LAG_MAX = "records-lag-max"
_SOURCE_OUT = ".numRecordsOutPerSecond"
_SOURCE_OUT_TOTAL = ".numRecordsOut"
_WRITER_IN = "Writer.numRecordsInPerSecond"
#: Seconds a vertex's list of metric names is reused; in its first ``_SETTLING`` seconds, ``_RELIST_EARLY`` (a
#: vertex lists its operators' metrics as they register: a Kafka reader's once it has its splits).
_RELIST = 30.0
_RELIST_EARLY = 3.0
_SETTLING = 60.0
#: A Kafka source reader's per-partition metric (``...KafkaSourceReader.topic.<topic>.partition.<n>.currentOffset``):
#: the partitions a vertex reads are those its subtasks report.
_PARTITION = re.compile(r"KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<partition>[0-9]+)\.")


def _number(value: object) -> float | None:
    """A metric value as Flink's REST API gives it (a number or a string); None for missing or not finite."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _aggregates(rows: object) -> dict[str, Mapping[str, Any]]:
    """``[{"id": name, "sum": .., "max": ..}, ...]`` (an aggregated metrics answer) keyed by name."""
    if not isinstance(rows, list):
        return {}
    return {str(row["id"]): row for row in rows if isinstance(row, dict) and "id" in row}


def _sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _ratio(ms_per_second: float | None) -> float | None:
    return None if ms_per_second is None else min(1.0, max(0.0, ms_per_second / 1000.0))


class _Unanswered(Exception):
    """Flink did not answer a request the figures cannot do without (the job's own details)."""


class FiguresReader:
    """Reads and caches jobs' live figures; safe to share between threads.

    ``timeout``: seconds for each request; ``deadline``: seconds for a whole :meth:`read` (jobs not read by then
    are unknown); ``ttl``: seconds an answer (or a failure to answer) is reused; ``max_connections``: requests in
    flight at once, over all jobs; ``relist``: seconds a vertex's list of metric names is reused; ``transport``: an
    httpx async transport (tests)."""

    def __init__(
        self,
        *,
        timeout: float = 1.0,
        deadline: float = 2.5,
        ttl: float = 5.0,
        max_connections: int = 32,
        relist: float = _RELIST,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.ttl = ttl
        self.max_connections = max_connections
        self.relist = relist
        self._transport = transport
        self._lock = threading.Lock()
        self._cache: dict[JobAddress, tuple[float, JobFigures | None]] = {}
        #: per (rest url, job, vertex): the operator metric names the figures use (``_operator_names``) and when
        #: they were listed; listed again after ``relist`` seconds: right after a start Flink lists a vertex's
        #: task metrics before all its operators' (a Kafka reader's come once it has its splits).
        self._names: dict[tuple[str, str, str], tuple[float, tuple[str, ...], int | None]] = {}
        self._first_listed: dict[tuple[str, str, str], float] = {}

    # -- public -----------------------------------------------------------------------------------------------

    def read(self, jobs: Iterable[JobAddress]) -> dict[JobAddress, JobFigures | None]:
        """The figures of ``jobs`` (None: unknown), from the cache where fresh; blocks at most ``deadline``
        seconds. Not from a thread that runs an event loop: there, await :meth:`read_async`."""
        wanted = list(dict.fromkeys(jobs))
        found, missing = self._cached(wanted)
        if missing:
            found.update(asyncio.run(self._fetch_all(missing)))
        return {job: found.get(job) for job in wanted}

    async def read_async(self, jobs: Iterable[JobAddress]) -> dict[JobAddress, JobFigures | None]:
        """:meth:`read` for a caller inside an event loop."""
        wanted = list(dict.fromkeys(jobs))
        found, missing = self._cached(wanted)
        if missing:
            found.update(await self._fetch_all(missing))
        return {job: found.get(job) for job in wanted}

    # -- cache ------------------------------------------------------------------------------------------------

    def _cached(self, jobs: Sequence[JobAddress]) -> tuple[dict[JobAddress, JobFigures | None], list[JobAddress]]:
        now = time.monotonic()
        found: dict[JobAddress, JobFigures | None] = {}
        missing: list[JobAddress] = []
        with self._lock:
            for stale in [job for job, (at, _) in self._cache.items() if now - at > self.ttl]:
                del self._cache[stale]
            for job in jobs:
                if job in self._cache:
                    found[job] = self._cache[job][1]
                else:
                    missing.append(job)
        return found, missing

    async def _fetch_all(self, jobs: Sequence[JobAddress]) -> dict[JobAddress, JobFigures | None]:
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        async with httpx.AsyncClient(
            timeout=self.timeout,
            limits=limits,
            transport=self._transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
            verify=_tls_context(),
        ) as client:
            tasks = {job: asyncio.ensure_future(self._fetch(client, job)) for job in jobs}
            done, pending = await asyncio.wait(tasks.values(), timeout=self.deadline)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        results: dict[JobAddress, JobFigures | None] = {}
        for job, task in tasks.items():
            results[job] = task.result() if task in done and task.exception() is None else None
        now = time.monotonic()
        with self._lock:
            for job, figures in results.items():
                self._cache[job] = (now, figures)
            if len(self._names) > 4096:  # jobs come and go: forget the names of old ones
                self._names.clear()
                self._first_listed.clear()
        return results

    # -- one job ----------------------------------------------------------------------------------------------

    async def _get(self, client: httpx.AsyncClient, url: str, params: Mapping[str, str] | None = None) -> object:
        try:
            response = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise _Unanswered(str(exc)) from exc
        if response.status_code != 200:
            raise _Unanswered(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise _Unanswered("not JSON") from exc

    async def _optional(self, client: httpx.AsyncClient, url: str, params: Mapping[str, str] | None = None) -> object:
        """A request whose failure leaves only its own figures unknown."""
        try:
            return await self._get(client, url, params)
        except _Unanswered:
            return None

    async def _fetch(self, client: httpx.AsyncClient, job: JobAddress) -> JobFigures | None:
        base = f"{job.rest_url.rstrip('/')}/jobs/{quote(job.job_id, safe='')}"
        try:
            details = await self._get(client, base)
        except _Unanswered:
            return None
        if not isinstance(details, dict):
            return None
        vertices = [v for v in details.get("vertices") or [] if isinstance(v, dict) and v.get("id")]
        sources, sinks = _ends(details, [str(v["id"]) for v in vertices])
        vertex_answers, (restarts_answer, checkpoints_answer) = await asyncio.gather(
            asyncio.gather(*(self._vertex(client, job, base, str(v["id"])) for v in vertices)),
            asyncio.gather(
                self._optional(client, f"{base}/metrics", {"get": "numRestarts"}),
                self._optional(client, f"{base}/checkpoints"),
            ),
        )
        figures = []
        for raw, answer in zip(vertices, vertex_answers, strict=True):
            vid = str(raw["id"])
            parallelism, most = raw.get("parallelism"), raw.get("maxParallelism")
            task = answer.task
            figures.append(
                VertexFigures(
                    vertex_id=vid,
                    name=str(raw.get("name") or vid),
                    parallelism=parallelism if isinstance(parallelism, int) else None,
                    is_source=vid in sources,
                    is_sink=vid in sinks,
                    records_in_per_second=_number(task.get("numRecordsInPerSecond", {}).get("sum")),
                    records_out_per_second=_number(task.get("numRecordsOutPerSecond", {}).get("sum")),
                    busy_ratio=_ratio(_number(task.get("busyTimeMsPerSecond", {}).get("max"))),
                    backpressure_ratio=_ratio(_number(task.get("backPressuredTimeMsPerSecond", {}).get("max"))),
                    kafka_lag=answer.kafka_lag,
                    sources_out_per_second=answer.sources_out,
                    writers_in_per_second=answer.writers_in,
                    max_parallelism=most if isinstance(most, int) and most > 0 else None,
                    kafka_partitions=answer.kafka_partitions,
                    records_in_total=_number(task.get("numRecordsIn", {}).get("sum")),
                    sources_out_total=answer.sources_out_total,
                    busy_ms_total=_number(task.get("accumulateBusyTimeMs", {}).get("max")),
                    backpressured_ms_total=_number(task.get("accumulateBackPressuredTimeMs", {}).get("max")),
                )
            )
        return _job_figures(job, details, tuple(figures), restarts_answer, checkpoints_answer)

    async def _vertex(self, client: httpx.AsyncClient, job: JobAddress, base: str, vid: str) -> _VertexAnswer:
        """The vertex's aggregated task metrics and, from its operators' own metrics: what its source operators
        emit, what its sink writers take in, and its Kafka readers' lag."""
        url = f"{base}/vertices/{quote(vid, safe='')}/subtasks/metrics"
        key = (job.rest_url, job.job_id, vid)
        listed, now = self._names.get(key), time.monotonic()
        settling = now - self._first_listed.get(key, now) < _SETTLING
        reuse = min(self.relist, _RELIST_EARLY) if settling else self.relist
        fresh = listed is not None and now - listed[0] < reuse
        names = listed[1] if listed is not None else None
        partitions = listed[2] if listed is not None else None
        if not fresh:  # first seen, or listed a while ago: what do its operators report now?
            listing = await self._optional(client, url)
            # (a listing that failed keeps the names listed before: their figures are still worth asking for)
            if isinstance(listing, list):
                ids = [str(row.get("id")) for row in listing if isinstance(row, dict)]
                names, partitions = _operator_names(ids), _partitions(ids)
                with self._lock:
                    self._names[key] = (time.monotonic(), names, partitions)
                    self._first_listed.setdefault(key, now)
        wanted = ",".join((*_TASK_METRICS, *(names or ())))
        rows = _aggregates(await self._optional(client, url, {"get": wanted, "agg": "sum,max"}))

        def summed(suffix: str) -> float | None:
            return _sum(_number(rows.get(n, {}).get("sum")) for n in names or () if n.endswith(suffix))

        # Both, the larger: a real KafkaSource reported pendingRecords 0 while it read a backlog at 17k records/s.
        lag = _max(
            (
                summed("." + _PENDING),
                _max(_number(rows.get(n, {}).get("max")) for n in names or () if n.endswith(_LAG_MAX)),
            )
        )
        return _VertexAnswer(rows, summed(_SOURCE_OUT), summed(_WRITER_IN), lag, partitions, summed(_SOURCE_OUT_TOTAL))


def _partitions(ids: Sequence[str]) -> int | None:
    """How many Kafka partitions a vertex's readers report metrics for (None: it reads no Kafka, or its
    readers have no splits yet)."""
    found = {(m["topic"], m["partition"]) for m in (_PARTITION.search(n) for n in ids) if m is not None}
    return len(found) or None


def _operator_names(ids: Sequence[str]) -> tuple[str, ...]:
    """Of a vertex's metric names, the operator metrics the figures use: source operators' records out
    (``Source__<name>.numRecordsOutPerSecond``), sink writers' records in (``<name>Writer.numRecordsInPerSecond``,
    the Sink V2 writer), and a Kafka source's ``pendingRecords`` and ``records-lag-max``."""
    kafka = any(marker in name for name in ids for marker in _KAFKA_MARKERS)
    found = [
        n
        for n in ids
        if (n.startswith("Source__") and n.endswith((_SOURCE_OUT, _SOURCE_OUT_TOTAL)))
        or n.endswith(_WRITER_IN)
        or (kafka and n.endswith(("." + _PENDING, _LAG_MAX)))
    ]
    return tuple(found)


@dataclass(frozen=True)
class _VertexAnswer:
    task: dict[str, Mapping[str, Any]]
    sources_out: float | None
    writers_in: float | None
    kafka_lag: float | None
    kafka_partitions: int | None = None
    sources_out_total: float | None = None


def _ends(details: Mapping[str, Any], vertex_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """The source vertices (no inputs) and the sink vertices (no vertex reads from them), from the job's plan;
    without a plan, the first vertex is the source and the last the sink (Flink lists them in topological
    order)."""
    plan = details.get("plan")
    nodes = plan.get("nodes") if isinstance(plan, dict) else None
    if not isinstance(nodes, list) or not nodes:
        return ({vertex_ids[0]} if vertex_ids else set()), ({vertex_ids[-1]} if vertex_ids else set())
    inputs: dict[str, set[str]] = {}
    for node in nodes:
        if isinstance(node, dict) and node.get("id"):
            edges = node.get("inputs") or []
            inputs[str(node["id"])] = {str(e.get("id")) for e in edges if isinstance(e, dict) and e.get("id")}
    read_from = set().union(*inputs.values()) if inputs else set()
    sources = {vid for vid in vertex_ids if not inputs.get(vid)}
    sinks = {vid for vid in vertex_ids if vid not in read_from}
    return sources, sinks


def _job_figures(
    job: JobAddress,
    details: Mapping[str, Any],
    vertices: tuple[VertexFigures, ...],
    restarts_answer: object,
    checkpoints_answer: object,
) -> JobFigures:
    records_in = _sum(
        v.sources_out_per_second if v.sources_out_per_second is not None else v.records_out_per_second
        for v in vertices
        if v.is_source
    )
    records_out = _sum(
        v.writers_in_per_second
        if v.writers_in_per_second is not None
        else (v.records_out_per_second if v.is_source else v.records_in_per_second)
        for v in vertices
        if v.is_sink
    )
    restarts = None
    for row in restarts_answer if isinstance(restarts_answer, list) else []:
        if isinstance(row, dict) and row.get("id") == "numRestarts":
            value = _number(row.get("value"))
            restarts = int(value) if value is not None else None
    stats = checkpoint_stats(checkpoints_answer)
    latest = stats.latest_completed
    acked = (latest.latest_ack_timestamp or latest.trigger_timestamp) if latest is not None else None
    last_checkpoint = acked / 1000.0 if acked and acked > 0 else None
    parallelisms = [v.parallelism for v in vertices if v.parallelism is not None]
    state = details.get("state")
    return JobFigures(
        job_id=job.job_id,
        state=str(state) if state else None,
        read_at=time.time(),
        vertices=vertices,
        records_in_per_second=records_in,
        records_out_per_second=records_out,
        busy_ratio=_max(v.busy_ratio for v in vertices),
        backpressure_ratio=_max(v.backpressure_ratio for v in vertices),
        kafka_lag=_sum(v.kafka_lag for v in vertices),
        restarts=restarts,
        parallelism=max(parallelisms) if parallelisms else None,
        checkpoints_completed=stats.counts.completed,
        checkpoints_failed=stats.counts.failed,
        last_checkpoint_time=last_checkpoint,
    )
