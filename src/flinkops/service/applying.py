"""``apply``: create or update resources, all or nothing as far as input goes.

The whole batch is checked first (``service.inputs.check``: every resource, the updates, the batch against the
store, the savepoints it would start from; then ``Target.local_files``: the jobs' jars, their Main-Class, Python
scripts and interpreters); invalid input raises ``InvalidInput`` and writes nothing. Then the batch is written,
all or nothing where the store can do it: the local store writes it in one transaction, so a failure while
writing the last resource (one being deleted, a full disk) leaves the first ones unwritten too. The Kubernetes API
server has no transaction across objects; there each resource is written in turn (as ``kubectl apply`` does),
after the same checks. The store bumps ``metadata.generation`` only when the spec changed, which is how a result
tells ``created`` from ``configured`` from ``unchanged``. Writing is all this does: the controller acts.

Called by: the CLI (``flinkops apply``), and Python callers (``flinkops.service.apply``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.errors import InvalidInput
from flinkops.ports import ResourceKey, ResourceStore
from flinkops.service.inputs import check
from flinkops.service.target import Target

__all__ = ["Applied", "Outcome", "apply"]

Outcome = Literal["created", "configured", "unchanged"]
Resource = FlinkDeployment | FlinkSessionJob


@runtime_checkable
class _Transactional(Protocol):
    """A store that writes a batch all or nothing (the local SQLite store)."""

    def apply_all(self, resources: Sequence[Resource]) -> list[Resource]: ...


def _write(store: ResourceStore, resources: Sequence[Resource]) -> list[Resource]:
    if isinstance(store, _Transactional):
        return store.apply_all(resources)
    return [store.apply(resource) for resource in resources]


@dataclass(frozen=True)
class Applied:
    """One written resource: what changed, and the resource as stored (its generation is the one to wait for)."""

    key: ResourceKey
    outcome: Outcome
    resource: FlinkDeployment | FlinkSessionJob

    @property
    def generation(self) -> int:
        return self.resource.metadata.generation or 0


def apply(
    target: Target, resources: Sequence[FlinkDeployment | FlinkSessionJob], *, start_controller: bool = True
) -> list[Applied]:
    """Validate ``resources`` as a whole, then write each; with ``start_controller`` make sure something
    reconciles them (the local daemon; the operator on Kubernetes). Applying the same input again is a no-op
    (``unchanged``, same generation)."""
    store = target.store()
    existing = check(target, resources, store)
    files = target.local_files(resources)  # before any effect: a missing jar or script changes nothing
    if files.problems:
        raise InvalidInput(list(files.problems))
    applied: list[Applied] = []
    for stored in _write(store, resources):
        key = ResourceKey.of(stored)
        before = existing.get((key.kind, key.namespace, key.name))
        outcome: Outcome = "created"
        if before is not None:
            outcome = "configured" if stored.metadata.generation != before.metadata.generation else "unchanged"
        applied.append(Applied(key, outcome, stored))
    if start_controller:
        target.ensure_controller()
    return applied
