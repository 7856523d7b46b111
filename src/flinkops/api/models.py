"""Spec and status models of ``FlinkDeployment`` and ``FlinkSessionJob`` (``flink.apache.org/v1beta1``).

Field names, types, enums and defaults follow the reference operator's CRDs so that YAML written for it is
accepted unchanged; the status keeps the reference shape so ``-o json`` output and Kubernetes tooling read the
same fields. Unknown fields are rejected (``extra="forbid"``) so a typo is an error with a path, not a silently
ignored setting. Every model is frozen: a new state is a new value (``model_copy(update=...)``).

Each spec field carries its diff class in ``Annotated`` metadata (``SpecDiff``); ``core.diff`` reads it to
classify a spec change. Fields without metadata are ``UPGRADE``.

Called by: the loader (parsing YAML), core (pure decisions), stores (persisting), the CLI (printing).
This module does no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from flinkops.errors import ErrorReason

__all__ = [
    "API_VERSION",
    "CANARY_LABEL",
    "AutoscalerStatus",
    "AutoscalerVertex",
    "Checkpoint",
    "CheckpointInfo",
    "Condition",
    "DeploymentMode",
    "DeploymentRecord",
    "DiffType",
    "FlinkDeployment",
    "FlinkDeploymentSpec",
    "FlinkDeploymentStatus",
    "FlinkSessionJob",
    "FlinkSessionJobSpec",
    "FlinkSessionJobStatus",
    "FlinkVersion",
    "IngressSpec",
    "JobManagerDeploymentStatus",
    "JobManagerSpec",
    "JobSpec",
    "JobState",
    "JobStatus",
    "LifecycleState",
    "ObjectMeta",
    "PreparedCluster",
    "ReconciliationState",
    "ReconciliationStatus",
    "RequestedResources",
    "Resource",
    "ResourceKind",
    "Savepoint",
    "SavepointInfo",
    "ScalingRecord",
    "SpecDiff",
    "TaskManagerInfo",
    "TaskManagerSpec",
    "UpgradeMode",
    "flatten_flink_configuration",
    "is_canary_document",
]

API_VERSION = "flink.apache.org/v1beta1"


class DiffType(enum.IntEnum):
    """How disruptive a spec change is; an aggregate diff is the maximum over changed fields."""

    IGNORE = 0
    SCALE = 1
    UPGRADE = 2
    SAVEPOINT_REDEPLOY = 3


@dataclass(frozen=True)
class SpecDiff:
    """Field metadata: the diff class of a change to this field, optionally different per deployment mode.

    ``nonce=True`` marks a nonce: only a change *to a non-null value* counts (clearing a nonce is ignored).
    """

    kind: DiffType
    modes: dict[str, DiffType] = field(default_factory=dict)
    nonce: bool = False

    def for_mode(self, mode: str) -> DiffType:
        return self.modes.get(mode, self.kind)


IGNORE = SpecDiff(DiffType.IGNORE)


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


class FlinkVersion(enum.StrEnum):
    v1_13 = "v1_13"
    v1_14 = "v1_14"
    v1_15 = "v1_15"
    v1_16 = "v1_16"
    v1_17 = "v1_17"
    v1_18 = "v1_18"
    v1_19 = "v1_19"
    v1_20 = "v1_20"
    v2_0 = "v2_0"
    v2_1 = "v2_1"
    v2_2 = "v2_2"
    v2_3 = "v2_3"
    v2_4 = "v2_4"


class UpgradeMode(enum.StrEnum):
    STATELESS = "stateless"
    LAST_STATE = "last-state"
    SAVEPOINT = "savepoint"


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUSPENDED = "suspended"


class DeploymentMode(enum.StrEnum):
    NATIVE = "native"
    STANDALONE = "standalone"


class ResourceKind(enum.StrEnum):
    FLINK_DEPLOYMENT = "FlinkDeployment"
    FLINK_SESSION_JOB = "FlinkSessionJob"


# --------------------------------------------------------------------------------------------- metadata


class ObjectMeta(BaseModel):
    """Kubernetes object metadata. Every ObjectMeta field is accepted so ``kubectl get -o yaml`` output
    round-trips; flinkops sets ``generation``, ``resourceVersion``, ``uid`` and ``creationTimestamp``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    name: str
    namespace: str = "default"
    generate_name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = None


# --------------------------------------------------------------------------------------------- spec


def flatten_flink_configuration(value: Any, prefix: str = "") -> dict[str, str]:
    """Flatten ``flinkConfiguration`` written as nested YAML into Flink's flat ``a.b.c: value`` form.

    Scalars become strings the way Flink's YAML parser reads them (``true``/``false``, numbers as written);
    lists become Flink's ``;``-separated list form. A key written twice (flat and nested: ``a.b: 1`` and
    ``a: {b: 2}``) with different values raises ``ValueError`` naming it: one of the two would silently win.
    """
    if not isinstance(value, dict):
        raise TypeError("flinkConfiguration must be a mapping of configuration keys to values")
    flat: dict[str, str] = {}
    for key, item in value.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict):
            written = flatten_flink_configuration(item, full)
        elif isinstance(item, bool):
            written = {full: "true" if item else "false"}
        elif isinstance(item, list):
            written = {full: ";".join(_scalar(v) for v in item)}
        elif item is None:
            written = {full: ""}
        else:
            written = {full: _scalar(item)}
        for name, text in written.items():
            if name in flat and flat[name] != text:
                raise ValueError(
                    f"the key '{name}' is given twice (flat and nested) with different values, "
                    f"'{flat[name]}' and '{text}'"
                )
            flat[name] = text
    return flat


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Resource(_Model):
    """The deprecated-but-common compact resource form: ``{memory: "2048m", cpu: 1}``."""

    cpu: StrictFloat | StrictInt | None = None
    memory: str | None = None
    ephemeral_storage: str | None = None


class IngressSpec(_Model):
    template: str
    class_name: str | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    tls: list[dict[str, Any]] | None = None


class JobManagerSpec(_Model):
    resource: Resource | None = None
    resources: dict[str, Any] | None = None
    replicas: StrictInt = 1
    pod_template: dict[str, Any] | None = None


class TaskManagerSpec(_Model):
    resource: Resource | None = None
    resources: dict[str, Any] | None = None
    replicas: Annotated[StrictInt | None, SpecDiff(DiffType.UPGRADE, {"standalone": DiffType.SCALE})] = None
    pod_template: dict[str, Any] | None = None


class JobSpec(_Model):
    """What to run. ``jarURI``: ``local://``, a path, or (session jobs) ``file://``/``https://``."""

    jar_uri: str | None = Field(default=None, alias="jarURI")
    parallelism: Annotated[StrictInt | None, SpecDiff(DiffType.UPGRADE, {"standalone": DiffType.SCALE})] = None
    entry_class: str | None = None
    args: list[str] = Field(default_factory=list)
    state: JobState = JobState.RUNNING
    savepoint_trigger_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.IGNORE, nonce=True)] = None
    initial_savepoint_path: Annotated[str | None, IGNORE] = None
    checkpoint_trigger_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.IGNORE, nonce=True)] = None
    upgrade_mode: Annotated[UpgradeMode, IGNORE] = UpgradeMode.STATELESS
    allow_non_restored_state: Annotated[StrictBool | None, IGNORE] = None
    savepoint_redeploy_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.SAVEPOINT_REDEPLOY, nonce=True)] = None
    autoscaler_reset_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.IGNORE, nonce=True)] = None


class _FlinkConfigMixin(_Model):
    flink_configuration: dict[str, str] = Field(default_factory=dict)

    @field_validator("flink_configuration", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            try:
                return flatten_flink_configuration(value)
            except ValueError as exc:
                raise PydanticCustomError("flink_configuration_conflict", str(exc)) from exc
        return value  # let pydantic report the wrong type with its path


class FlinkDeploymentSpec(_FlinkConfigMixin):
    job: JobSpec | None = None
    restart_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.UPGRADE, nonce=True)] = None
    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    service_account: str | None = None
    flink_version: FlinkVersion | None = None
    ingress: IngressSpec | None = None
    pod_template: dict[str, Any] | None = None
    job_manager: JobManagerSpec | None = None
    task_manager: TaskManagerSpec | None = None
    log_configuration: dict[str, str] | None = None
    mode: DeploymentMode | None = None


class FlinkSessionJobSpec(_FlinkConfigMixin):
    deployment_name: str
    job: JobSpec | None = None
    restart_nonce: Annotated[StrictInt | None, SpecDiff(DiffType.UPGRADE, nonce=True)] = None


# --------------------------------------------------------------------------------------------- status


class LifecycleState(enum.StrEnum):
    CREATED = "CREATED"
    DEPLOYED = "DEPLOYED"
    STABLE = "STABLE"
    UPGRADING = "UPGRADING"
    SUSPENDED = "SUSPENDED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"


class ReconciliationState(enum.StrEnum):
    DEPLOYED = "DEPLOYED"
    UPGRADING = "UPGRADING"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"


class JobManagerDeploymentStatus(enum.StrEnum):
    READY = "READY"
    DEPLOYED_NOT_READY = "DEPLOYED_NOT_READY"
    DEPLOYING = "DEPLOYING"
    MISSING = "MISSING"
    ERROR = "ERROR"


class _Status(_Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Savepoint(_Status):
    time_stamp: int
    location: str
    trigger_type: Literal["MANUAL", "PERIODIC", "UPGRADE", "UNKNOWN"] = "UNKNOWN"
    format_type: Literal["CANONICAL", "NATIVE", "UNKNOWN"] = "UNKNOWN"
    trigger_nonce: int | None = None


class Checkpoint(_Status):
    time_stamp: int
    trigger_type: Literal["MANUAL", "PERIODIC", "UPGRADE", "UNKNOWN"] = "UNKNOWN"
    format_type: Literal["FULL", "INCREMENTAL", "UNKNOWN"] = "UNKNOWN"
    trigger_nonce: int | None = None


class SavepointInfo(_Status):
    last_savepoint: Savepoint | None = None
    trigger_id: str | None = None
    trigger_timestamp: int | None = None
    trigger_type: Literal["MANUAL", "PERIODIC", "UPGRADE", "UNKNOWN"] | None = None
    format_type: Literal["CANONICAL", "NATIVE", "UNKNOWN"] | None = None
    savepoint_history: list[Savepoint] = Field(default_factory=list)
    last_periodic_savepoint_timestamp: int | None = None


class CheckpointInfo(_Status):
    last_checkpoint: Checkpoint | None = None
    trigger_id: str | None = None
    trigger_timestamp: int | None = None
    trigger_type: Literal["MANUAL", "PERIODIC", "UPGRADE", "UNKNOWN"] | None = None
    format_type: Literal["FULL", "INCREMENTAL", "UNKNOWN"] | None = None
    last_periodic_checkpoint_timestamp: int | None = None


FlinkJobState = Literal[
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
    "RECONCILING",
]


class JobStatus(_Status):
    job_name: str | None = None
    job_id: str | None = None
    state: FlinkJobState | None = None
    start_time: str | None = None
    update_time: str | None = None
    upgrade_savepoint_path: str | None = None
    savepoint_info: SavepointInfo | None = None
    checkpoint_info: CheckpointInfo | None = None


class ReconciliationStatus(_Status):
    reconciliation_timestamp: int | None = None
    last_reconciled_spec: str | None = None
    last_stable_spec: str | None = None
    state: ReconciliationState = ReconciliationState.UPGRADING


class Condition(_Status):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class TaskManagerInfo(_Status):
    label_selector: str = ""
    replicas: int = 0


class RequestedResources(_Status):
    """What one run's cluster asked for (a flinkops status extension, recorded when the run is deployed): the
    processes and what each of them requests, as the spec of that run said. Cost reports read it, so a run is
    priced by what it asked for even after a later spec changed the resources."""

    job_managers: int
    job_manager_cpu: float
    job_manager_memory_bytes: int
    task_managers: int
    task_manager_cpu: float
    task_manager_memory_bytes: int
    task_slots: int  # per TaskManager


class DeploymentRecord(_Status):
    """One start of a FlinkDeployment's or FlinkSessionJob's job, or of a session cluster's JobManager (no job
    id; running once its REST API answers): a flinkops status extension, readers of the reference shape ignore
    it. It answers the auditor's questions (which spec generation wrote which checkpoints, what state each run
    started from), gives ``flinkops plan`` the measured downtime of past upgrades, tells the planner whether the
    job ever checkpointed (its state must not be dropped) and counts the starts that died (``crashloop``)."""

    generation: int
    job_id: str | None = None
    reason: str = "deploy"  # first-deploy | upgrade | resume | recover | rollback | savepoint-redeploy | restore
    upgrade_mode: str | None = None
    restored_from: str | None = None
    stopped_at: int | None = None  # epoch ms the previous job stopped (None on a first deploy)
    started_at: int = 0  # epoch ms the deploy began
    running_at: int | None = None  # epoch ms every task of the new job was first seen RUNNING (session: REST ready)
    checkpointed: bool = False  # the job completed at least one checkpoint
    ended_at: int | None = None  # epoch ms the job reached FINISHED or FAILED (its cluster then goes)
    end_state: str | None = None
    job_duration_ms: int | None = None  # Flink's run time of the job (start to end)
    result: dict[str, str] = Field(default_factory=dict)  # the job's user accumulators when it ended
    #: Set when the controller stops this job to start another one from its newest state (upgrade, suspend,
    #: recover, rollback): the write-ahead record of the stop. The next pass reads the stopped job's newest
    #: completed checkpoint from storage (the truth once the job has stopped; Flink's statistics lag) and
    #: starts the target from it: the restore point is decided from an observation, after the stop.
    stopped_for: str | None = None
    stop_requested_at: int | None = None  # epoch ms the stop was decided
    #: Epoch ms the run's cluster was gone (its processes or pods stopped): written by the controller once its
    #: delete returned (a batch job's end, suspend, upgrade, delete). Between ``ended_at`` and this, the cluster
    #: cost money doing nothing (the idle tail).
    released_at: int | None = None
    #: Epoch ms the run's cluster was asked of the runtime (after the preflight that ``started_at`` includes):
    #: written by the controller when it deploys; the cost of a run counts from here.
    deployed_at: int | None = None
    requested: RequestedResources | None = None  # what the run's cluster asked for (None: recorded before)
    checkpoints: int | None = None  # checkpoints the job completed, as far as the controller saw
    # What the run used, from Flink's metrics (the cost report's "used" figures), written at the run's end and at
    # most every ``USAGE_INTERVAL_MS`` while it runs (``core.planner.steady.note_run_progress`` says how):
    used_cpu_seconds: float | None = None  # CPU seconds the run's cluster's JVMs used (application deployments)
    used_gib_seconds: float | None = None  # GiB of memory in use x seconds, sampled (application deployments)
    usage_sampled_at: int | None = None  # epoch ms of the sample the figures above and below count to
    state_gib_hours: float | None = None  # GiB of checkpointed state held x hours, sampled
    checkpoint_bytes: int | None = None  # bytes the run's checkpoints uploaded to checkpoint storage

    @property
    def downtime_ms(self) -> int | None:
        if self.stopped_at is None or self.running_at is None:
            return None
        return max(0, self.running_at - self.stopped_at)


class FlinkSessionJobStatus(_Status):
    job_status: JobStatus = Field(default_factory=JobStatus)
    error: str | None = None  # for people: what went wrong and what to do
    error_reason: ErrorReason | None = None  # set and cleared with ``error``; decisions branch on this, not the text
    observed_generation: int | None = None
    lifecycle_state: LifecycleState | None = None
    reconciliation_status: ReconciliationStatus = Field(default_factory=ReconciliationStatus)
    conditions: list[Condition] = Field(default_factory=list)
    #: Every start of the job, newest last (a flinkops extension of both kinds' status).
    deployment_history: list[DeploymentRecord] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _reason_of_an_earlier_version(cls, data: Any) -> Any:
        """Migration for statuses recorded by versions before ``errorReason`` existed: their error carries no
        reason, so derive it once, here, as the status is read. Everything else reads the reason only."""
        if not isinstance(data, dict) or not data.get("error"):
            return data
        if data.get("errorReason") is not None or data.get("error_reason") is not None:
            return data
        return {**data, "errorReason": _legacy_error_reason(str(data["error"]))}


def _legacy_error_reason(error: str) -> ErrorReason:
    """The reason an error message written before ``errorReason`` existed stands for. Those versions decided on
    the message itself, on exactly these two forms; every other error gets the generic reason."""
    if error.startswith("ValidationError: "):  # the planner's report of an invalid spec
        return ErrorReason.VALIDATION_ERROR
    if "Manual restore required" in error:  # the planner's or the controller's report of lost state
        return ErrorReason.MANUAL_RESTORE_REQUIRED
    return ErrorReason.RECONCILE_ERROR


class PreparedCluster(_Status):
    """The write-ahead record of a pre-started upgrade (a flinkops status extension): the new generation's
    cluster was asked to start next to the running job before that job stops. ``used``: the job was stopped with
    that cluster ready, so the deploy promotes it; ``fallback``: why the upgrade went on in the usual order."""

    generation: int
    requested_at: int  # epoch ms
    used: bool = False
    fallback: str | None = None


class AutoscalerVertex(_Status):
    """One vertex as the autoscaler's newest evaluation saw it (averages over the metrics window): what it took
    in, how busy it was, what it could do, what it must do, and the parallelism that needs (a flinkops status
    extension, like everything under ``status.autoscaler``)."""

    vertex_id: str
    name: str
    parallelism: int | None = None
    #: share of each second the busiest subtask was busy / back-pressured (0..1)
    busy: float | None = None
    backpressure: float | None = None
    #: records/s the vertex took in (a source: what it emitted)
    input_rate: float | None = None
    #: records its Kafka readers had not read yet (newest sample), and the partitions they read
    lag: float | None = None
    partitions: int | None = None
    max_parallelism: int | None = None
    #: records/s it could take in at its parallelism when busy all the time (input rate / busy share)
    true_processing_rate: float | None = None
    #: records/s it must take in: the input arriving at the job, scaled to this vertex
    target_rate: float | None = None
    needed_parallelism: int | None = None
    why: str = ""


class ScalingRecord(_Status):
    """One rescale the autoscaler decided (or recommended, with scaling disabled)."""

    at: int  # epoch ms
    job_id: str | None = None
    from_parallelism: int
    to_parallelism: int
    how: str  # in-place | savepoint-upgrade | recommendation
    reason: str
    #: the vertex that decided it and its true processing rate before (records/s)
    bottleneck: str | None = None
    rate_before: float | None = None
    #: its true processing rate measured after the rescale; ``effective`` False: the rescale did not raise it
    rate_after: float | None = None
    effective: bool | None = None


class AutoscalerStatus(_Status):
    """The autoscaler's record of a job (``job.autoscaler.enabled``): its newest evaluation, the parallelism it
    set, the facts its rules keep (when the last rescale was, since when the load has been low, a rescale found
    ineffective) and its recent decisions. ``flinkops autoscaler NAME`` shows it."""

    #: collecting | holding | balanced | scaling | recommending | blocked
    state: str = "collecting"
    reason: str = ""
    evaluated_at: int | None = None
    job_id: str | None = None
    #: the job's parallelism when evaluated, and the one the autoscaler set (None: the spec's own)
    current_parallelism: int | None = None
    parallelism: int | None = None
    recommended_parallelism: int | None = None
    last_rescale_at: int | None = None
    #: since when every evaluation found the load low (scale-down waits for the whole scale-down interval)
    low_since: int | None = None
    low_peak: int | None = None
    #: a scale-up found ineffective: no scale-up above this parallelism again
    blocked_above: int | None = None
    #: the window the vertices were measured over: its first and last sample (epoch ms) and how many it held
    window_from: int | None = None
    measured_at: int | None = None
    window_samples: int = 0
    vertices: list[AutoscalerVertex] = Field(default_factory=list)
    history: list[ScalingRecord] = Field(default_factory=list)
    reset_nonce: int | None = None


class FlinkDeploymentStatus(FlinkSessionJobStatus):
    cluster_info: dict[str, str] = Field(default_factory=dict)
    job_manager_deployment_status: JobManagerDeploymentStatus = JobManagerDeploymentStatus.MISSING
    task_manager: TaskManagerInfo | None = None
    prepared_cluster: PreparedCluster | None = None
    autoscaler: AutoscalerStatus | None = None


# --------------------------------------------------------------------------------------------- resources


#: The reference operator's label of a canary: a resource with no real spec that the operator reconciles (deploying
#: nothing) as a health probe of its own control loop.
CANARY_LABEL = "flink.apache.org/canary"


def _canary_labels(labels: Any) -> bool:
    """Labelled ``flink.apache.org/canary: "true"`` (the reference compares ignoring case)."""
    return isinstance(labels, dict) and str(labels.get(CANARY_LABEL, "")).lower() == "true"


def is_canary_document(data: Any) -> bool:
    """A CRD-shaped mapping labelled as a canary."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("metadata"), dict)
        and _canary_labels(data["metadata"].get("labels"))
    )


class FlinkDeployment(_Model):
    api_version: Literal["flink.apache.org/v1beta1"] = "flink.apache.org/v1beta1"
    kind: Literal["FlinkDeployment"] = "FlinkDeployment"
    metadata: ObjectMeta
    spec: FlinkDeploymentSpec
    status: FlinkDeploymentStatus | None = None

    @model_validator(mode="before")
    @classmethod
    def _canary_spec(cls, data: Any) -> Any:
        """A canary needs no spec (the reference's have none): an empty one stands in."""
        if is_canary_document(data) and data.get("spec") is None:
            return {**data, "spec": {}}
        return data

    @property
    def is_session_cluster(self) -> bool:
        return self.spec.job is None

    @property
    def is_canary(self) -> bool:
        return _canary_labels(self.metadata.labels)


class FlinkSessionJob(_Model):
    api_version: Literal["flink.apache.org/v1beta1"] = "flink.apache.org/v1beta1"
    kind: Literal["FlinkSessionJob"] = "FlinkSessionJob"
    metadata: ObjectMeta
    spec: FlinkSessionJobSpec
    status: FlinkSessionJobStatus | None = None

    @model_validator(mode="before")
    @classmethod
    def _canary_spec(cls, data: Any) -> Any:
        """A canary needs no spec and runs on no session cluster: an empty ``deploymentName`` stands in."""
        if not is_canary_document(data):
            return data
        spec = data.get("spec")
        if spec is None:
            return {**data, "spec": {"deploymentName": ""}}
        if isinstance(spec, dict) and "deploymentName" not in spec and "deployment_name" not in spec:
            return {**data, "spec": {**spec, "deploymentName": ""}}
        return data

    @property
    def is_canary(self) -> bool:
        return _canary_labels(self.metadata.labels)
