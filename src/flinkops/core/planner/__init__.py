"""The planner: from (desired spec, recorded status, observation) to a plan. Pure: no I/O, no clock.

A ``Plan`` is an ``intent`` status to write *before* acting (the write-ahead log: target spec, UPGRADING, the
job id about to be used, the state to restore from), a short list of ``Action`` values for the executor, the
``status`` to write once every action succeeded, events, and when to look again. If an action fails the intent
stays recorded, so the next pass sees UPGRADING and either adopts what was already applied (the cluster carries
the generation it was deployed for) or redoes the step. A controller restart is therefore a non-event.

Entry points: ``plan_deployment`` (FlinkDeployment) and ``plan_session_job`` (FlinkSessionJob). Branches
follow the aggregate diff class (``core.diff``), the desired/recorded job state and typed reasons, never
message text.

Map of the package (each module imports only those listed above it):

- ``types``: observations (``Observation``, ``JobObservation``, ``TriggerObservation``), ``Context``, the
  ``Action`` classes, ``EventNote``, ``Plan``, the plan ``Builder`` and small status helpers;
- ``snapshots``: manual (nonce) and periodic savepoints and checkpoints through one trigger mechanism
  parameterised by a ``SnapshotKind``, and savepoint retention;
- ``prestart``: pre-started upgrades: asking for the new cluster before the old job stops, waiting for it,
  falling back, and which cluster an upgrade's delete keeps;
- ``restore``: where a restarted job's state comes from (``ManualRestoreRequired`` when it is lost), the
  write-ahead deploy, and ``stop_first``: a job restarting from its newest state is stopped in one pass (the run
  records why) and the next pass chooses the restore point from storage, which is the truth once it stopped;
- ``deletion``: deleting a resource;
- ``rollback``: when a rollback is due, the manual rollback, and rolling back;
- ``steady``: the steady state: recovery, the job's observation, stability, releasing an ended job's cluster;
- ``deployment``: ``plan_deployment``: first deploys, spec changes, upgrade modes and their fallbacks,
  interrupted upgrades, the manual-restore report;
- ``session``: ``plan_session_job``: submit, upgrade (stop with a savepoint, or cancel first and restore the
  newest stored checkpoint next pass), suspend/resume, a job its session cluster lost, deletion.

Called by: ``controller.loop`` (and ``flinkops plan`` through ``Controller.preview``); ``now`` and fresh
job/trigger ids come in through ``Context``.
"""

from __future__ import annotations

from flinkops.core.planner.deployment import plan_deployment
from flinkops.core.planner.session import plan_session_job
from flinkops.core.planner.snapshots import trigger_pending
from flinkops.core.planner.types import (
    Action,
    CancelSessionJob,
    Context,
    DeleteCluster,
    DeployCluster,
    DisposeSnapshots,
    EventNote,
    JobObservation,
    Observation,
    Plan,
    PrepareCluster,
    RemoveResource,
    ReplaceMissingProcesses,
    ResizeSessionCluster,
    ScaleInPlace,
    Status,
    SubmitSessionJob,
    TriggerCheckpoint,
    TriggerObservation,
    TriggerSavepoint,
    headline,
    with_lifecycle,
)

__all__ = [
    "Action",
    "CancelSessionJob",
    "Context",
    "DeleteCluster",
    "DeployCluster",
    "DisposeSnapshots",
    "EventNote",
    "JobObservation",
    "Observation",
    "Plan",
    "PrepareCluster",
    "RemoveResource",
    "ReplaceMissingProcesses",
    "ResizeSessionCluster",
    "ScaleInPlace",
    "Status",
    "SubmitSessionJob",
    "TriggerCheckpoint",
    "TriggerObservation",
    "TriggerSavepoint",
    "headline",
    "plan_deployment",
    "plan_session_job",
    "trigger_pending",
    "with_lifecycle",
]
