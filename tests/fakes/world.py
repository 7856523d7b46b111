"""A whole flinkops world on fakes: one real ``Controller`` wired to a fake store, runtime, Flink and storage,
driven pass by pass on a virtual clock.

``World`` does what a user and the controller daemon do, in virtual time:

* user operations, the way the CLI performs them on the store: ``apply`` (YAML text, a CRD-shaped mapping or a
  model), ``edit``, ``suspend``/``resume``, ``request_savepoint``/``request_checkpoint`` (nonces),
  ``rollback`` (the last stable spec again), ``restore`` (``initialSavepointPath`` + redeploy nonce),
  ``delete``;
* the daemon's loop (``run_until``/``run_for``): a resource is due when any spec changes, when its cluster (a
  session job's: its session cluster) lost a process, and otherwise when its last pass asked (``requeue_after``);
  the clock jumps to the next due pass. ``World(min_requeue=10.0)`` spaces passes as the Kubernetes operator does
  (its controller's floor);
* ``crash_at(when, action)``: the controller's failpoint raises ``ControllerCrashed`` at that step, the world
  catches it and starts a *new* ``Controller`` on the same store, runtime, Flink and storage (a restarted
  controller process: no memory of the old one, every resource due at once);
* reading what a user sees: ``status``, ``lifecycle``, ``events``, ``reasons``, and what ran (``runs``).

Called by: behaviour tests (``tests/behaviour``), and later anything that wants a controller in a box (an
Airflow provider's operator tests, a web page, an autoscaler).

Invariant: the controller is the real one and sees the world only through the ports; the world only changes
the store as a user would, and breaks things only through the fakes' knobs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from fakes.clock import DEFAULT_START, ManualClock
from fakes.flink import FakeFlink, FakeJob
from fakes.provisioning import FakeProvisioner
from fakes.runtime import FakeRuntime
from fakes.snapshots import FakeSnapshots
from fakes.store import FakeStore
from flinkops.api.loader import load_documents, load_object
from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobStatus,
    JobState,
)
from flinkops.controller import Controller, ReconcileResult, on_cluster
from flinkops.core.planner import Action
from flinkops.core.specs import load_spec
from flinkops.ports import ClusterKey, Event, Resource, ResourceKey
from flinkops.ports.flink import JobAddress, JobFigures

__all__ = ["ControllerCrashed", "Crash", "World"]

DEPLOYMENT = "FlinkDeployment"
_JSON: dict[str, Any] = {"mode": "json", "by_alias": True, "exclude_none": True}
SESSION_JOB = "FlinkSessionJob"


class ControllerCrashed(Exception):
    """The controller process died at a failpoint (not a ``FlinkopsError``: nothing in the controller catches it)."""


@dataclass(frozen=True)
class Crash:
    """One simulated controller death: where, on which resource, at which virtual time."""

    when: str
    action: str
    key: ResourceKey
    at: float


class World:
    """A controller, its fakes and a virtual clock. See the module docstring."""

    def __init__(self, *, start: float = DEFAULT_START, restart_delay: float = 0.0, min_requeue: float = 0.0) -> None:
        self.clock = ManualClock(start)
        #: Virtual seconds between a controller's death at a failpoint and its replacement's first pass.
        self.restart_delay = restart_delay
        #: The controller's floor between passes: 0 as the local daemon, 10 s as the Kubernetes operator.
        self.min_requeue = min_requeue
        self.store = FakeStore(self.clock)
        self.snapshots = FakeSnapshots()
        self.flink = FakeFlink(self.clock, self.snapshots)
        self.runtime = FakeRuntime(self.flink, self.clock)
        self.provisioner = FakeProvisioner(self.snapshots)
        self.crashes: list[Crash] = []
        #: What the autoscaler reads a job's live figures with (None: it reads none and holds).
        self.figures: Callable[[JobAddress], JobFigures | None] | None = None
        #: Every failpoint the controller passed, in order: ("before", "DeployCluster"), ...
        self.steps: list[tuple[str, str]] = []
        #: How many controller processes have run (1 + restarts).
        self.controllers = 0
        self.passes = 0
        self._id_serial = itertools.count(1)
        self._armed: list[tuple[str, str]] = []
        self._due: dict[ResourceKey, float] = {}
        self._seen_changes = -1
        self._watching: dict[ClusterKey, list[ResourceKey]] = {}
        self._current: ResourceKey | None = None
        self.controller = self._start_controller()

    # ------------------------------------------------------------------ the controller process

    def _ids(self) -> str:
        """Fresh job and trigger ids: deterministic, and unlike a counter they differ in their first six hex
        digits (savepoint directories are named after those)."""
        return hashlib.sha256(f"flinkops-fake-{next(self._id_serial)}".encode()).hexdigest()[:32]

    def _failpoint(self, when: str, action: Action) -> None:
        point = (when, type(action).__name__)
        self.steps.append(point)
        if point in self._armed:
            self._armed.remove(point)
            assert self._current is not None
            self.crashes.append(Crash(when, point[1], self._current, self.clock.now()))
            raise ControllerCrashed(f"controller killed {when} {point[1]}")

    def _start_controller(self) -> Controller:
        self.controllers += 1
        self._due = {}
        self._seen_changes = -1
        return Controller(
            self.store,
            self.runtime,
            self.flink,
            self.provisioner,
            self.clock,
            failpoint=self._failpoint,
            ids=self._ids,
            min_requeue=self.min_requeue,
            figures=lambda address: self.figures(address) if self.figures is not None else None,
        )

    def restart_controller(self) -> None:
        """Kill the controller between passes and start a new one (nothing of the old one survives)."""
        self.controller = self._start_controller()

    def crash_at(self, when: str, action: str | type[Action]) -> None:
        """Make the controller die the next time it reaches ``when`` ("before"/"after") an action of this type."""
        assert when in ("before", "after"), when
        name = action if isinstance(action, str) else action.__name__
        self._armed.append((when, name))

    @property
    def armed(self) -> list[tuple[str, str]]:
        """Crash points not reached yet."""
        return list(self._armed)

    # ------------------------------------------------------------------ user operations

    def apply(self, resource: str | Mapping[str, Any] | Resource) -> Resource:
        """Create or update resources (YAML text, one CRD-shaped mapping, or a model); returns the last one."""
        if isinstance(resource, str):
            parsed = load_documents(resource, "<world>")
        elif isinstance(resource, FlinkDeployment | FlinkSessionJob):
            parsed = [resource]
        else:
            parsed = [load_object(dict(resource), "<world>")]
        stored: Resource | None = None
        for item in parsed:
            stored = self.store.apply(item)  # the store keeps metadata and spec; status is the controller's
        assert stored is not None, "nothing to apply"
        return stored

    def resource(self, name: str, kind: str = DEPLOYMENT, namespace: str = "default") -> Resource | None:
        return self.store.get(ResourceKey(kind, namespace, name))

    def deployment(self, name: str, namespace: str = "default") -> FlinkDeployment:
        found = self.resource(name, DEPLOYMENT, namespace)
        assert isinstance(found, FlinkDeployment), f"no FlinkDeployment {namespace}/{name}"
        return found

    def edit(
        self,
        name: str,
        *,
        kind: str = DEPLOYMENT,
        namespace: str = "default",
        job: Mapping[str, Any] | None = None,
        conf: Mapping[str, str | None] | None = None,
    ) -> Resource:
        """Change the stored spec like editing the YAML: ``job`` sets JobSpec fields (model names, e.g.
        ``args``, ``state``, ``parallelism``), ``conf`` sets flinkConfiguration keys (None removes one)."""
        current = self.resource(name, kind, namespace)
        assert current is not None, f"no {kind} {namespace}/{name}"
        spec = current.spec
        if conf is not None:
            merged = dict(spec.flink_configuration)
            for key, value in conf.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            spec = spec.model_copy(update={"flink_configuration": merged})
        if job is not None:
            assert spec.job is not None
            # Validated, so a value written the YAML way ("stateless") becomes what the model holds.
            updated = type(spec.job).model_validate({**spec.job.model_dump(), **dict(job)})
            spec = spec.model_copy(update={"job": updated})
        return self.store.apply(current.model_copy(update={"spec": spec}))

    def suspend(self, name: str, kind: str = DEPLOYMENT) -> Resource:
        return self.edit(name, kind=kind, job={"state": JobState.SUSPENDED})

    def resume(self, name: str, kind: str = DEPLOYMENT) -> Resource:
        return self.edit(name, kind=kind, job={"state": JobState.RUNNING})

    def request_savepoint(self, name: str) -> int:
        """``flinkops savepoint NAME``: bump the savepoint nonce; returns it."""
        job = self.deployment(name).spec.job
        assert job is not None
        nonce = (job.savepoint_trigger_nonce or 0) + 1
        self.edit(name, job={"savepoint_trigger_nonce": nonce})
        return nonce

    def request_checkpoint(self, name: str) -> int:
        """``flinkops checkpoint NAME``: bump the checkpoint nonce; returns it."""
        job = self.deployment(name).spec.job
        assert job is not None
        nonce = (job.checkpoint_trigger_nonce or 0) + 1
        self.edit(name, job={"checkpoint_trigger_nonce": nonce})
        return nonce

    def rollback(self, name: str) -> Resource:
        """``flinkops rollback NAME``: apply the last stable spec again."""
        current = self.deployment(name)
        assert current.status is not None
        stable = load_spec(current.status.reconciliation_status.last_stable_spec, FlinkDeploymentSpec)
        assert stable is not None, f"{name} has no stable spec yet"
        return self.store.apply(current.model_copy(update={"spec": stable}))

    def restore(self, name: str, path: str) -> Resource:
        """``flinkops restore NAME --to PATH``: ``initialSavepointPath`` plus a savepoint redeploy nonce."""
        job = self.deployment(name).spec.job
        assert job is not None
        nonce = (job.savepoint_redeploy_nonce or 0) + 1
        return self.edit(name, job={"initial_savepoint_path": path, "savepoint_redeploy_nonce": nonce})

    def delete(self, name: str, kind: str = DEPLOYMENT, namespace: str = "default") -> None:
        self.store.request_deletion(ResourceKey(kind, namespace, name))

    # ------------------------------------------------------------------ the loop

    def _schedule(self) -> None:
        now = self.clock.now()
        changes = self.store.change_counter()
        if changes != self._seen_changes:
            self._seen_changes = changes
            resources = self.store.list_resources()
            present = {ResourceKey.of(r) for r in resources}
            self._watching = on_cluster(resources)
            for key in present:
                self._due[key] = now
            for key in set(self._due) - present:
                del self._due[key]
        for cluster in self.runtime.changed_clusters():
            for key in self._watching.get(cluster, ()):
                if key in self._due:
                    self._due[key] = now  # a process died: look now (its session jobs too), not at the next pass

    def step(self) -> ReconcileResult | None:
        """One pass of the resource due first (the clock jumps to it). None when nothing is due or the
        controller died during the pass (it is restarted)."""
        self._schedule()
        if not self._due:
            return None
        key = min(self._due, key=lambda k: (self._due[k], k))
        self.clock.advance_to(self._due[key])
        return self.reconcile_key(key)

    def reconcile_key(self, key: ResourceKey) -> ReconcileResult | None:
        self.passes += 1
        self._current = key
        try:
            result = self.controller.reconcile(key)
        except ControllerCrashed:
            self.clock.advance(self.restart_delay)  # the world goes on while no controller runs
            self.restart_controller()
            return None
        finally:
            self._current = None
        if result.requeue_after is None:
            self._due.pop(key, None)
        else:
            self._due[key] = self.clock.now() + result.requeue_after
        return result

    def reconcile(self, name: str, kind: str = DEPLOYMENT, namespace: str = "default") -> ReconcileResult | None:
        """One pass for one resource, now."""
        return self.reconcile_key(ResourceKey(kind, namespace, name))

    def run_until(self, predicate: Callable[[World], bool], *, max_passes: int = 300, what: str = "") -> int:
        """Run passes until ``predicate(world)`` holds; returns the passes it took. Fails with the status and
        events of every resource when it does not hold after ``max_passes`` (a virtual second with nothing to
        reconcile counts as one)."""
        start, idle = self.passes, 0
        while not predicate(self):
            if self.passes - start + idle >= max_passes:
                raise AssertionError(f"not reached after {max_passes} passes: {what or predicate}\n{self.describe()}")
            self._schedule()
            if not self._due:
                self.clock.advance(1.0)  # nothing to reconcile: let Flink's time pass
                idle += 1
                continue
            self.step()
        return self.passes - start

    def run_for(self, seconds: float) -> None:
        """Run every pass due in the next ``seconds`` of virtual time, then stop the clock there."""
        end = self.clock.now() + seconds
        while True:
            self._schedule()
            if not self._due or min(self._due.values()) > end:
                break
            self.step()
        self.clock.advance_to(end)

    # ------------------------------------------------------------------ what a user sees

    def status(
        self, name: str, kind: str = DEPLOYMENT, namespace: str = "default"
    ) -> FlinkDeploymentStatus | FlinkSessionJobStatus:
        """The recorded status (an empty one before the first status write)."""
        found = self.resource(name, kind, namespace)
        assert found is not None, f"no {kind} {namespace}/{name}"
        if found.status is not None:
            return found.status
        return FlinkDeploymentStatus() if isinstance(found, FlinkDeployment) else FlinkSessionJobStatus()

    def deployment_status(self, name: str, namespace: str = "default") -> FlinkDeploymentStatus:
        status = self.status(name, DEPLOYMENT, namespace)
        assert isinstance(status, FlinkDeploymentStatus)
        return status

    def lifecycle(self, name: str, kind: str = DEPLOYMENT) -> str | None:
        found = self.resource(name, kind)
        state = found.status.lifecycle_state if found is not None and found.status is not None else None
        return state.value if state is not None else None

    def job_state(self, name: str, kind: str = DEPLOYMENT) -> str | None:
        found = self.resource(name, kind)
        return found.status.job_status.state if found is not None and found.status is not None else None

    def events(self, name: str, kind: str = DEPLOYMENT, namespace: str = "default") -> list[Event]:
        return self.store.events(ResourceKey(kind, namespace, name))

    def reasons(self, name: str, kind: str = DEPLOYMENT) -> list[str]:
        """Event reasons in order (a repeated event counts once, as ``describe`` shows it)."""
        return [e.reason for e in self.events(name, kind)]

    def runs(self, name: str, namespace: str = "default") -> list[FakeJob]:
        """Every job the deployment's clusters ever ran, in start order."""
        key = ClusterKey(namespace, name)
        return [j for j in self.flink.started if self.runtime.owners.get(j.cluster_id) == key and not j.session]

    def session_runs(self, cluster: str, namespace: str = "default") -> list[FakeJob]:
        """Every session job submitted to the session cluster ``cluster``, in start order."""
        key = ClusterKey(namespace, cluster)
        return [j for j in self.flink.started if self.runtime.owners.get(j.cluster_id) == key and j.session]

    def describe(self) -> str:
        """Every resource's status and events, for failure messages."""
        lines = [f"virtual time +{self.clock.now() - DEFAULT_START:.1f}s, {self.passes} passes"]
        for resource in self.store.list_resources():
            status = {} if resource.status is None else resource.status.model_dump(**_JSON)
            recon = status.get("reconciliationStatus", {})
            recon.pop("lastReconciledSpec", None)  # long JSON; the lifecycle and state say enough
            recon.pop("lastStableSpec", None)
            lines.append(f"--- {ResourceKey.of(resource)}\n{yaml.safe_dump(status, sort_keys=False)}")
            for event in self.store.events(ResourceKey.of(resource)):
                lines.append(f"  {event.type} {event.reason} (x{event.count}): {event.message}")
        for job in self.flink.started:
            lines.append(f"job {job.job_id[:8]} {job.args} {job.state} from {job.restored_from}")
        return "\n".join(lines)
