"""The running jobs' live figures for the fleet views, as Flink itself reports them now.

The status records only the checkpoints the controller triggered (``jobStatus.checkpointInfo``, as the reference
operator does); the periodic checkpoints Flink takes on its own are not written there, and records/s and
backpressure are nowhere in the status. ``LiveWatch.refresh`` reads every running job's figures at once through
``service.figures`` (``flink.figures``: concurrent, short timeouts, answers shared for a few seconds with a
Prometheus scrape in the same process); the page runs it in the background every few seconds, so rendering never
waits for Flink, and ``top`` before each frame. ``apply`` shows the newer of the recorded and the reported
checkpoint; ``figures`` is ``top``'s source of records/s and backpressure. A JobManager that does not answer
leaves its figures unknown (the status's checkpoint, or none): never zero.

Called by: ``flinkops.web.app`` (the page), ``cli.fleet`` (``top``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

from flinkops.errors import FlinkopsError
from flinkops.ports import ResourceKey
from flinkops.ports.flink import JobFigures
from flinkops.service.fleet import Row
from flinkops.service.target import Target

__all__ = ["LiveWatch"]

log = logging.getLogger("flinkops.web")

Reader = Callable[[Target], Mapping[ResourceKey, JobFigures | None]]


def _read(target: Target) -> Mapping[ResourceKey, JobFigures | None]:
    from flinkops.service.figures import live

    return live(target)


class LiveWatch:
    """The live figures of every running job among the rows last refreshed, by resource."""

    def __init__(self, target: Target, read: Reader = _read) -> None:
        self.target = target
        self._read = read
        self._known: Mapping[ResourceKey, JobFigures | None] = {}

    def refresh(self, rows: Sequence[Row]) -> None:
        """Read the figures of the running jobs in ``rows`` (nobody is asked when none runs)."""
        running = {r.key for r in rows if r.job_state == "RUNNING"}
        if not running:
            self._known = {}
            return
        try:
            read = self._read(self.target)
        except (FlinkopsError, OSError) as exc:  # the store is busy: the figures stay unknown this round
            log.debug("live figures not read: %s", exc)
            read = {}
        self._known = {key: found for key, found in read.items() if key in running}

    def figures(self, row: Row) -> JobFigures | None:
        """``row``'s job's figures as last read (None: not running, or Flink did not answer)."""
        return self._known.get(row.key)

    def apply(self, rows: Sequence[Row]) -> list[Row]:
        """``rows`` with the newer of the recorded and the reported checkpoint time."""
        found: list[Row] = []
        for row in rows:
            figures = self._known.get(row.key)
            reported = figures.last_checkpoint_time if figures is not None else None
            if reported is not None and (row.checkpoint_ms is None or reported * 1000 > row.checkpoint_ms):
                row = dataclasses.replace(row, checkpoint_ms=int(reported * 1000))
            found.append(row)
        return found

    def close(self) -> None:
        self._known = {}
