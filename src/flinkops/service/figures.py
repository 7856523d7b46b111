"""Live job figures for people: records/s in and out, busy and back-pressure ratios, Kafka lag, restarts,
checkpoint counts, as the jobs' JobManagers report them now (``flink.figures`` reads them; the value types are
``ports.flink.JobFigures`` and ``VertexFigures``).

:func:`figures` answers for one resource or for every resource of a namespace (or of the target), concurrently
and within a few seconds however many there are; answers are reused for a few seconds (one reader per process),
so the fleet page, ``flinkops top`` and a Prometheus scrape in the same process do not multiply the requests to
Flink. A resource whose JobManager does not answer has ``known=False`` and ``figures=None``: show it as unknown,
never as zero. A figure Flink has not measured yet (right after a start) is None within known figures.

On a Kubernetes target the JobManagers' addresses are the cluster's Service names: they answer from inside the
cluster (the operator, a pod) and read as unknown from outside.

Callers: the fleet page, ``flinkops top``, Python callers. From inside an event loop, run it in a thread
(``asyncio.to_thread``): it blocks for at most a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from flinkops.ports import ResourceKey
from flinkops.ports.flink import JobFigures, VertexFigures
from flinkops.service.resources import resolve
from flinkops.service.target import Target, live_figures

__all__ = ["JobFigures", "ResourceFigures", "VertexFigures", "figures", "live"]


@dataclass(frozen=True)
class ResourceFigures:
    key: ResourceKey
    #: False when the resource has a running job but its JobManager did not answer in time (the figures are
    #: unknown); True when Flink answered.
    known: bool
    figures: JobFigures | None


def figures(target: Target, name: str | None = None, namespace: str | None = "default") -> list[ResourceFigures]:
    """The live figures of resource ``name`` (``NotFound``, exit 2, when there is none) or, without a name, of
    every resource of ``namespace`` (None: every namespace) that has a live job, sorted by key. A resource that
    exists but has no live job (suspended, finished, not deployed yet) is not listed: there is nothing to read."""
    everything = target.store().list_resources()
    if name is not None:
        wanted = {ResourceKey.of(resolve(target, name, namespace or "default"))}
    else:
        wanted = {ResourceKey.of(r) for r in everything if namespace is None or r.metadata.namespace == namespace}
    read = live_figures(everything, wanted)
    return [ResourceFigures(key, found is not None, found) for key, found in sorted(read.items())]


def live(target: Target) -> dict[ResourceKey, JobFigures | None]:
    """The figures of every resource of ``target`` with a live job, by key (None: its JobManager did not
    answer): what the fleet page and ``top`` show beside each row."""
    return live_figures(target.store().list_resources())
