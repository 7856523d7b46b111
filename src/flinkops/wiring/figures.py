"""Where each resource's job runs, for the live figures reader (``flink.figures``): a FlinkDeployment's job on its
own JobManager (``status.clusterInfo["rest-url"]``), a FlinkSessionJob's on its session cluster's JobManager (the
FlinkDeployment ``spec.deploymentName`` of its namespace), with the job id the controller recorded
(``status.jobStatus.jobId``).

Only jobs worth asking about get an address: one that is recorded as running or being started (no job id, no
JobManager address, or a job that ended or was suspended: no address, so nothing is asked and no figure is
shown).

Callers: ``wiring.metrics`` (each scrape) and ``service.figures`` (the page and ``flinkops top``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.flink.figures import FiguresReader, JobAddress, JobFigures
from flinkops.ports import Resource, ResourceKey

__all__ = ["autoscaler_figures", "job_address", "job_addresses", "live_figures"]

#: Job states in which Flink has nothing live to report.
_NOT_LIVE = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})


def _rest_url(deployment: FlinkDeployment | None) -> str | None:
    if deployment is None or deployment.status is None:
        return None
    url = (deployment.status.cluster_info or {}).get("rest-url")
    return str(url) if url else None


def job_address(resource: Resource, deployments: Mapping[tuple[str, str], FlinkDeployment]) -> JobAddress | None:
    """Where ``resource``'s job can be asked for its figures; None when it has no live job to ask about.
    ``deployments``: the FlinkDeployments by (namespace, name), for a session job's cluster."""
    status = resource.status
    if status is None or status.job_status.job_id is None or status.job_status.state in _NOT_LIVE:
        return None
    if isinstance(resource, FlinkDeployment):
        if resource.spec.job is None or resource.spec.job.state.value == "suspended":
            return None
        url = _rest_url(resource)
    elif isinstance(resource, FlinkSessionJob):
        if resource.spec.job is not None and resource.spec.job.state.value == "suspended":
            return None
        url = _rest_url(deployments.get((resource.metadata.namespace, resource.spec.deployment_name)))
    else:
        return None
    return JobAddress(url, status.job_status.job_id) if url else None


def job_addresses(resources: Iterable[Resource]) -> dict[ResourceKey, JobAddress]:
    """The job address of every resource of ``resources`` that has one (session jobs find their cluster among
    ``resources``: pass the FlinkDeployments too)."""
    listed = list(resources)
    deployments = {(r.metadata.namespace, r.metadata.name): r for r in listed if isinstance(r, FlinkDeployment)}
    found: dict[ResourceKey, JobAddress] = {}
    for resource in listed:
        address = job_address(resource, deployments)
        if address is not None:
            found[ResourceKey.of(resource)] = address
    return found


def live_figures(
    resources: Iterable[Resource], reader: FiguresReader, keys: Iterable[ResourceKey] | None = None
) -> dict[ResourceKey, JobFigures | None]:
    """The live figures of the resources ``keys`` (default: every one of ``resources``) that have a running job,
    read by ``reader`` (only those: a session job finds its cluster among ``resources``, so pass them all):
    ``None`` for one whose JobManager did not answer (unknown); a resource with no live job is left out."""
    addresses = job_addresses(resources)
    if keys is not None:
        wanted = set(keys)
        addresses = {k: a for k, a in addresses.items() if k in wanted}
    read = reader.read(addresses.values())
    return {key: read.get(address) for key, address in addresses.items()}


def autoscaler_figures() -> Callable[[JobAddress], JobFigures | None]:
    """What the controller's autoscaler reads a job's figures with: a reader of its own (its answers are reused
    for at most a second, so each pass sees the job as it is), bounded like every read but more patient than a
    page's: a busy JobManager that answers in two seconds still gives the autoscaler its figures."""
    reader = FiguresReader(ttl=1.0, timeout=3.0, deadline=5.0)

    def read(address: JobAddress) -> JobFigures | None:
        return reader.read([address]).get(address)

    return read
