"""The flinkops error taxonomy.

Every failure that crosses a module boundary is one of these. Foreign exceptions (httpx, sqlite3, OSError,
subprocess) are translated where they are caught, once, with ``raise ... from exc``; nothing branches on an
exception message. The CLI maps ``InvalidInput`` to exit code 2 and every other ``FlinkopsError`` to 1.

``ErrorReason`` is the code recorded next to ``status.error`` (``errorReason``): decisions branch on it, never on
the message, which is for people. An error raised during a reconcile pass is recorded with its class's
``reason``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "FAULT_REASONS",
    "ClusterFault",
    "Conflict",
    "ErrorReason",
    "FlinkApiError",
    "FlinkNotFound",
    "FlinkRequestRejected",
    "FlinkUnavailable",
    "FlinkopsError",
    "InvalidInput",
    "ManualRestoreRequired",
    "NotFound",
    "PermanentError",
    "Problem",
    "RuntimeFailure",
    "TemporaryError",
    "UnsupportedSnapshotStorage",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with user input: where (a field path such as ``spec.job.parallelism``), what, and how
    to fix it."""

    path: str
    message: str
    hint: str = ""
    source: str = ""  # e.g. "fraud.yaml#2" (file and 1-based document index)

    def render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        text = f"{where}{self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ErrorReason(enum.StrEnum):
    """Why status.error is set, recorded beside it as status.errorReason: decisions read this code, people read
    the error text."""

    VALIDATION_ERROR = "ValidationError"  # the spec is invalid; the last valid spec keeps being reconciled
    MANUAL_RESTORE_REQUIRED = "ManualRestoreRequired"  # a stateful job's state is known to exist but is lost
    JOB_FAILED = "JobFailed"  # the Flink job failed; the error is its exception
    RECONCILE_ERROR = "ReconcileError"  # a reconcile pass failed with an error; it is retried with backoff
    INVALID_RESOURCE = "InvalidResource"  # the resource does not fit the schema, so it cannot be read at all
    JOB_RESTARTING = "JobRestarting"  # the job keeps failing over (RESTARTING); the error is its latest exception
    # What the cluster runtime sees wrong with a cluster's pods (``ClusterFault``); cleared when it is gone:
    IMAGE_UNAVAILABLE = "ImageUnavailable"  # the image is not on the node and cannot (or may not) be pulled
    UNSCHEDULABLE = "Unschedulable"  # no node has room for the pod (CPU, memory) or matches its constraints
    CRASH_LOOP = "CrashLoop"  # the Flink container keeps exiting (or was killed for its memory)
    POD_CONFIG_ERROR = "PodConfigError"  # the container cannot be created (a Secret or ConfigMap it names, ...)
    # A JobManager process that exited on its own before its job ever ran, which nothing but the controller
    # restarts (the local runtime): retried with backoff up to a budget, then FAILED (``core.planner.crashloop``).
    # Not a fault reason: the error stays through the retries, until the deployment is stable or its spec changes.
    START_FAILED = "StartFailed"


#: The reasons of ``ClusterFault``: recorded while the fault is observed, cleared as soon as it is not.
FAULT_REASONS = frozenset(
    {ErrorReason.IMAGE_UNAVAILABLE, ErrorReason.UNSCHEDULABLE, ErrorReason.CRASH_LOOP, ErrorReason.POD_CONFIG_ERROR}
)


@dataclass(frozen=True)
class ClusterFault:
    """Something wrong with a cluster's pods that Flink cannot report: an image missing, a pod no node can take, a
    container that keeps exiting. ``message`` names the pod and the cause and says what to change; ``reason`` is
    what decisions read (one of ``FAULT_REASONS``, or ``START_FAILED`` for a local JobManager process that exited
    before its job ran). ``component`` is ``jobmanager`` or ``taskmanager``. ``retryable`` is False when starting
    the same spec again cannot end otherwise (Flink could not even build the program from the jar: its entry
    class or jar is missing), so no retry is spent on it."""

    reason: ErrorReason
    component: str
    message: str
    retryable: bool = True


class FlinkopsError(Exception):
    """Base of every error flinkops raises on purpose."""

    reason: ClassVar[ErrorReason] = ErrorReason.RECONCILE_ERROR  # recorded when a reconcile pass ends with it


class InvalidInput(FlinkopsError):
    """User input is wrong; nothing was changed. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.render() for p in self.problems) or "invalid input")


class NotFound(FlinkopsError):
    """A named resource does not exist."""


class Conflict(FlinkopsError):
    """An optimistic-concurrency write lost: the resource changed since it was read."""


class TemporaryError(FlinkopsError):
    """Retrying later may succeed (a process still starting, a REST endpoint not yet up)."""


class PermanentError(FlinkopsError):
    """Retrying will not help until the spec or the world changes."""


class ManualRestoreRequired(PermanentError):
    """A stateful job's state is known to exist (it completed checkpoints) but cannot be found: nothing is
    started until someone points the deployment at its state or chooses to start empty."""

    reason = ErrorReason.MANUAL_RESTORE_REQUIRED


class RuntimeFailure(PermanentError):
    """A cluster runtime could not do what was asked (a process would not start, a port was taken)."""


class UnsupportedSnapshotStorage(PermanentError):
    """The location is on storage this store cannot reach (``s3://`` before the S3 store exists, ``hdfs://``, a
    pod's disk): the controller then relies on what Flink reports instead of listing storage."""


class FlinkApiError(FlinkopsError):
    """Base of errors from the Flink REST API."""


class FlinkUnavailable(FlinkApiError, TemporaryError):
    """The REST endpoint did not answer (connection refused, timeout)."""


class FlinkNotFound(FlinkApiError):
    """The REST API answered 404: the job, trigger or jar does not exist."""


class FlinkRequestRejected(FlinkApiError):
    """The REST API answered with an error status; ``status`` and Flink's own ``errors`` are kept."""

    def __init__(self, status: int, errors: list[str], *, method: str = "", path: str = "") -> None:
        self.status = status
        self.errors = list(errors)
        self.method = method
        self.path = path
        detail = errors[0].strip().splitlines()[0] if errors and errors[0].strip() else "no detail"
        super().__init__(f"{method} {path} -> HTTP {status}: {detail}")
