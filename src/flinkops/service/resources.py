"""Reading resources: get one by name, list many, and the lifecycle state as users see it.

``get`` and ``list_resources`` answer with ``ResourceView``s: the stored object in its CRD shape (what ``-o json``
prints) and the facts a listing shows, read straight from that object. No pydantic model is built unless a caller
asks for one (``ResourceView.model()``): the models take longer to build than the rest of ``flinkops get``.
``resolve`` and ``deployment`` return models, for the operations that go on to change a resource.

Called by: the CLI (``get`` and every command that takes a NAME), the other service modules.
Invariant: a name that matches no resource is ``NotFound``; one that matches both kinds is ``InvalidInput``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flinkops.errors import InvalidInput, NotFound, Problem
from flinkops.ports import ResourceKey
from flinkops.service.target import Target

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment, FlinkSessionJob

    Resource = FlinkDeployment | FlinkSessionJob

__all__ = [
    "KINDS",
    "KIND_ALIASES",
    "ResourceView",
    "deployment",
    "get",
    "kind_named",
    "lifecycle",
    "lifecycle_state",
    "list_resources",
    "require_job",
    "resolve",
    "with_job",
]

KINDS = ("FlinkDeployment", "FlinkSessionJob")
KIND_ALIASES = {
    "flinkdeployment": "FlinkDeployment",
    "flinkdeployments": "FlinkDeployment",
    "flinkdep": "FlinkDeployment",
    "fd": "FlinkDeployment",
    "flinksessionjob": "FlinkSessionJob",
    "flinksessionjobs": "FlinkSessionJob",
    "sessionjob": "FlinkSessionJob",
    "sessionjobs": "FlinkSessionJob",
}

# LifecycleState values (flinkops.api.models), spelled out so reading a listing needs no model.
_DELETING = "DELETING"
_CREATED = "CREATED"

T = TypeVar("T")


def kind_named(text: str) -> str | None:
    """The kind ``text`` names (``fd``, ``sessionjob``, ``FlinkDeployment``, ...), or None."""
    return KIND_ALIASES.get(text.lower())


def lifecycle_state(deletion_timestamp: str | None, recorded: str | None) -> str:
    """The lifecycle users see: DELETING once deletion was asked for, else what the controller recorded, and
    CREATED before its first pass."""
    if deletion_timestamp:
        return _DELETING
    return recorded or _CREATED


def lifecycle(resource: Resource) -> str:
    state = resource.status.lifecycle_state if resource.status else None
    return lifecycle_state(resource.metadata.deletion_timestamp, state.value if state else None)


def _dig(document: Mapping[str, Any], *path: str) -> Any:
    value: Any = document
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class ResourceView:
    """One stored resource as ``get`` shows it. ``document`` is the CRD-shaped object (``-o json``)."""

    kind: str
    namespace: str
    name: str
    generation: int | None
    created: str | None
    lifecycle: str
    job_state: str | None
    job_id: str | None
    #: JobManager deployment status (FlinkDeployment with a status only).
    jobmanager: str | None
    rest_url: str | None
    error: str | None
    document: Mapping[str, Any]

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.namespace, self.name)

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> ResourceView:
        meta = document.get("metadata") or {}
        status = document.get("status")
        kind = str(document.get("kind"))
        deployment_status = kind == "FlinkDeployment" and status is not None
        return cls(
            kind=kind,
            namespace=str(meta.get("namespace", "default")),
            name=str(meta.get("name")),
            generation=meta.get("generation"),
            created=meta.get("creationTimestamp"),
            lifecycle=lifecycle_state(meta.get("deletionTimestamp"), _dig(document, "status", "lifecycleState")),
            job_state=_dig(document, "status", "jobStatus", "state"),
            job_id=_dig(document, "status", "jobStatus", "jobId"),
            jobmanager=_dig(document, "status", "jobManagerDeploymentStatus") if deployment_status else None,
            rest_url=_dig(document, "status", "clusterInfo", "rest-url") if deployment_status else None,
            error=_dig(document, "status", "error"),
            document=document,
        )

    def model(self) -> Resource:
        """The resource as its pydantic model."""
        from flinkops.api.models import FlinkDeployment, FlinkSessionJob

        if self.kind == "FlinkDeployment":
            return FlinkDeployment.model_validate(self.document)
        return FlinkSessionJob.model_validate(self.document)


def _only(found: Sequence[T], name: str, namespace: str) -> T:
    if not found:
        raise NotFound(f"no FlinkDeployment or FlinkSessionJob named {name!r} in namespace {namespace!r}")
    if len(found) > 1:
        raise InvalidInput([Problem(path="NAME", message=f"{name!r} names both kinds", hint="give the kind first")])
    return found[0]


def get(target: Target, name: str, namespace: str = "default", kind: str | None = None) -> ResourceView:
    """The resource called ``name`` (of ``kind``, or of either kind)."""
    kinds = [kind] if kind else KINDS
    found = [d for k in kinds if (d := target.document(ResourceKey(k, namespace, name))) is not None]
    return ResourceView.of(_only(found, name, namespace))


def list_resources(target: Target, kind: str | None = None, namespace: str | None = "default") -> list[ResourceView]:
    """Resources of ``kind`` (both kinds when None) in ``namespace`` (every namespace when None), by kind,
    namespace and name."""
    return [ResourceView.of(d) for d in target.documents(kind, namespace)]


def resolve(target: Target, name: str, namespace: str = "default", kind: str | None = None) -> Resource:
    """Like ``get``, as the model."""
    store = target.store()
    kinds = [kind] if kind else KINDS
    return _only([r for k in kinds if (r := store.get(ResourceKey(k, namespace, name))) is not None], name, namespace)


def deployment(target: Target, name: str, namespace: str = "default") -> FlinkDeployment:
    """The FlinkDeployment called ``name``."""
    from flinkops.api.models import FlinkDeployment

    found = resolve(target, name, namespace, "FlinkDeployment")
    assert isinstance(found, FlinkDeployment)
    return found


def require_job(resource: FlinkDeployment, what: str) -> None:
    """A session cluster has no job to take a savepoint of, restore, ..."""
    if resource.spec.job is None:
        raise InvalidInput([Problem("NAME", f"{resource.metadata.name} is a session cluster: it has no job to {what}")])


def with_job(resource: FlinkDeployment, **update: Any) -> FlinkDeployment:
    """``resource`` with ``spec.job`` fields replaced (the way a user editing the YAML changes them)."""
    assert resource.spec.job is not None
    job = resource.spec.job.model_copy(update=update)
    return resource.model_copy(update={"spec": resource.spec.model_copy(update={"job": job})})
