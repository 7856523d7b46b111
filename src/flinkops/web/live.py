"""The age of each running job's last completed checkpoint, as Flink itself reports it.

The status records only the checkpoints the controller triggered (``jobStatus.checkpointInfo``, as the reference
operator does); the periodic checkpoints Flink takes on its own are not written there. So the page and ``top``
ask each running job's JobManager (``GET /jobs/<id>/checkpoints``, the latest completed one) and show the newer
of the two. A JobManager that does not answer within ``timeout`` leaves the figure unknown (the status's value,
or none); it is never taken as zero.

``CheckpointWatch.refresh`` asks every running job at once (a small pool of threads, one keep-alive client per
JobManager); the page runs it in the background every few seconds, so rendering never waits for Flink; ``top``
runs it before each frame.

This is the smallest piece the fleet views need of the live job figures; the metrics module's reader of Flink's
REST API (records/s, backpressure) is meant to take it over.

Called by: ``flinkops.web.app`` (the page), ``cli.fleet`` (``top``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from flinkops.errors import FlinkopsError
from flinkops.flink.rest import FlinkRestClient
from flinkops.service.fleet import Row

__all__ = ["CheckpointWatch"]

log = logging.getLogger("flinkops.web")


class CheckpointWatch:
    """The latest completed checkpoint (epoch ms) Flink reports for each running job, by (REST address, job)."""

    def __init__(
        self, timeout: float = 1.5, workers: int = 8, client: Callable[[str], FlinkRestClient] | None = None
    ) -> None:
        self.timeout = timeout
        self.workers = workers
        self._new_client = client or (lambda url: FlinkRestClient(url, timeout=self.timeout, keepalive=30.0))
        self._known: dict[tuple[str, str], int | None] = {}
        self._clients: dict[str, FlinkRestClient] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> FlinkRestClient:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = self._new_client(url)
            return client

    def _ask(self, url: str, job_id: str) -> int | None:
        try:
            latest = self._client(url).checkpoints(job_id).latest_completed
        except (FlinkopsError, OSError) as exc:
            log.debug("no checkpoint statistics from %s for %s: %s", url, job_id, exc)
            return None
        return latest.latest_ack_timestamp if latest is not None else None

    def refresh(self, rows: Sequence[Row]) -> None:
        """Ask the JobManager of every running job in ``rows``; forget jobs no longer among them."""
        wanted = {(r.flink_ui, r.job_id) for r in rows if r.flink_ui and r.job_id and r.job_state == "RUNNING"}
        asked = sorted((url, job) for url, job in wanted if url is not None and job is not None)
        if not asked:
            self._known = {}
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(asked))) as pool:
            answers = list(pool.map(lambda key: self._ask(*key), asked))
        self._known = dict(zip(asked, answers, strict=True))
        with self._lock:
            for url in [u for u in self._clients if u not in {a[0] for a in asked}]:
                self._clients.pop(url).close()

    def apply(self, rows: Sequence[Row]) -> list[Row]:
        """``rows`` with the newer of the recorded and the reported checkpoint time."""
        known = self._known
        if not known:
            return list(rows)
        found: list[Row] = []
        for row in rows:
            reported = known.get((row.flink_ui or "", row.job_id or ""))
            if reported is not None and (row.checkpoint_ms is None or reported > row.checkpoint_ms):
                row = dataclasses.replace(row, checkpoint_ms=reported)
            found.append(row)
        return found

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
