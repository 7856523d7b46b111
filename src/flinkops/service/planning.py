"""``plan``: what ``apply`` would do with some input, changing nothing; and ``lint``, the guardrails alone.

The input is checked exactly as ``apply`` checks it (invalid input, and the preflight of the jobs' local files, are
``InvalidInput`` here too; what each ``/opt/flink/...`` path is on this machine is a note). Each resource is
then previewed by the controller itself (``Controller.preview``: validate, observe read-only, plan; no action, no
write) as the next generation with its recorded status: the diff class and the fields behind it, the steps the
controller would take, what it would warn about, and the downtime past restarts of that deployment took. Lint
findings come last. Local target only: on Kubernetes the operator is the controller, and it is not here.

Called by: the CLI (``flinkops plan``, ``flinkops lint``), and Python callers.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from flinkops.api.models import FlinkDeployment, FlinkDeploymentStatus, FlinkSessionJob
from flinkops.api.validation import resource_label
from flinkops.core.lint import Finding
from flinkops.core.lint import lint as lint_resource
from flinkops.errors import InvalidInput
from flinkops.ports import ResourceKey
from flinkops.service.inputs import Existing, check
from flinkops.service.target import Previewer, Target, local_only

__all__ = ["Change", "Downtime", "LintReport", "PlanNote", "PlanReport", "ResourcePlan", "lint", "plan"]

Resource = FlinkDeployment | FlinkSessionJob


@dataclass(frozen=True)
class Change:
    """How the spec differs from the stored one: the aggregate diff class (``SCALE``, ``UPGRADE``, ...) and the
    fields of that class (all changed fields when none reaches it)."""

    kind: str
    fields: tuple[str, ...]
    #: False when nothing in the spec changed at all
    any: bool


@dataclass(frozen=True)
class PlanNote:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Downtime:
    """What past restarts of a deployment cost (a first deployment stops nothing, so only restarts count)."""

    deployed: bool
    measured_ms: tuple[int, ...]

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.measured_ms) / 1000 if self.measured_ms else None

    @property
    def last_s(self) -> float | None:
        return self.measured_ms[-1] / 1000 if self.measured_ms else None


@dataclass(frozen=True)
class ResourcePlan:
    key: ResourceKey
    create: bool
    #: None for a new resource, or when the controller did not compare specs (a resource being deleted, say)
    change: Change | None
    summary: str
    steps: tuple[str, ...]
    notes: tuple[PlanNote, ...]
    #: updates of a FlinkDeployment only
    downtime: Downtime | None
    #: session jobs: the session cluster the job waits for before it is submitted
    waiting_for: str | None = None


@dataclass(frozen=True)
class LintReport:
    key: ResourceKey
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class PlanReport:
    resources: tuple[ResourcePlan, ...]
    lint: tuple[LintReport, ...]


def lint(resources: Sequence[Resource]) -> list[LintReport]:
    """The known Flink-on-Kubernetes pitfalls in each resource (no store, no target: the YAML alone)."""
    return [LintReport(ResourceKey.of(r), tuple(lint_resource(r))) for r in resources]


def plan(target: Target, resources: Sequence[Resource]) -> PlanReport:
    """What applying ``resources`` would do; nothing is written."""
    local_only(target, "plan")
    existing = check(target, resources)
    files = target.local_files(resources)
    if files.problems:
        raise InvalidInput(list(files.problems))
    controller = target.previewer()
    batch: set[tuple[str, str, str]] = {(r.kind, r.metadata.namespace, r.metadata.name) for r in resources}
    plans = tuple(
        _plan_one(controller, r, existing.get((r.kind, r.metadata.namespace, r.metadata.name))) for r in resources
    )
    plans = tuple(_with_paths(p, files.lines(resource_label(r))) for p, r in zip(plans, resources, strict=True))
    return PlanReport(tuple(_in_file(p, batch, existing) for p in plans), tuple(lint(resources)))


def _in_file(planned: ResourcePlan, batch: set[tuple[str, str, str]], existing: Existing) -> ResourcePlan:
    """A session job waiting for its cluster, told where that cluster comes from: ``apply`` takes the whole input
    at once, so a cluster later in the same file (the GitOps order) is one the job will run on."""
    if planned.waiting_for is None:
        return planned
    name = planned.waiting_for
    cluster = ("FlinkDeployment", planned.key.namespace, name)
    if cluster in batch and cluster not in existing:
        summary = f"waits for session cluster '{name}', which this input creates; submitted once it is ready"
    elif cluster in batch:
        summary = f"waits for session cluster '{name}' (this input updates it) to be ready; then submitted"
    elif cluster in existing:
        summary = f"waits for session cluster '{name}' to be ready; then submitted"
    else:
        summary = (
            f"waits for session cluster '{name}', which does not exist yet (not in this input, not stored); "
            "submitted once it is created and ready"
        )
    steps = (*planned.steps, f"submit the job once session cluster '{name}' is ready")
    return replace(planned, summary=summary, steps=steps)


def _with_paths(planned: ResourcePlan, lines: list[str]) -> ResourcePlan:
    """``planned`` with a note for each ``/opt/flink/...`` path of its job and what it is on this machine."""
    notes = tuple(PlanNote("Normal", "LocalFile", line) for line in lines)
    return replace(planned, notes=notes + planned.notes) if notes else planned


def _plan_one(controller: Previewer, resource: Resource, old: Resource | None) -> ResourcePlan:
    generation = ((old.metadata.generation or 0) + 1) if old is not None else 1
    candidate = resource.model_copy(
        update={
            "status": old.status if old is not None else None,
            "metadata": resource.metadata.model_copy(update={"generation": generation}),
        }
    )
    preview = controller.preview(candidate)
    change = None
    if old is not None and preview.change is not None:
        diff = preview.change
        fields = diff.paths(at_least=diff.kind) or diff.paths()
        change = Change(diff.kind.name, tuple(fields), bool(diff.fields))
    downtime = None
    if isinstance(resource, FlinkDeployment) and isinstance(old, FlinkDeployment):
        downtime = _downtime(old.status)
    return ResourcePlan(
        key=ResourceKey.of(resource),
        create=old is None,
        change=change,
        summary=preview.summary,
        steps=tuple(action.describe() for action in preview.actions),
        # The change itself is the headline already; every other note is worth reading before applying.
        notes=tuple(PlanNote(e.type, e.reason, e.message) for e in preview.events if e.reason != "SpecChanged"),
        downtime=downtime,
        waiting_for=preview.waiting_for,
    )


def _downtime(status: FlinkDeploymentStatus | None) -> Downtime:
    if status is None:
        return Downtime(deployed=False, measured_ms=())
    return Downtime(True, tuple(r.downtime_ms for r in status.deployment_history if r.downtime_ms is not None))
