"""What flinkops knows about Flink configuration keys, in one place.

Where state lives (the Flink 2 key first, then the Flink 1 spelling Flink still reads), and which keys belong
to the operator rather than to Flink (they steer flinkops and are never passed to a Flink process, and changing
them never restarts a job).

Called by: validation, lint, the spec-diff classifier, config rendering, the controller, the CLI. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeploymentSpec

__all__ = [
    "CHECKPOINT_DIR_KEYS",
    "CRASH_BACKOFF_KEY",
    "CRASH_MAX_BACKOFF_KEY",
    "CRASH_RETRIES_KEY",
    "DEFAULT_WEB_REFRESH",
    "METRICS_FETCH_KEY",
    "METRICS_FETCH_MS",
    "OPERATOR_KEY_PREFIXES",
    "PRESTART_KEY",
    "PROGRESS_CHECK_KEY",
    "PYTHON_DRIVER",
    "SAVEPOINT_DIR_KEYS",
    "SCHEDULER_KEY",
    "TASKMANAGER_IDLE_TIMEOUT_KEY",
    "TASK_SLOTS_KEY",
    "WEB_REFRESH_KEY",
    "adaptive_scheduler",
    "checkpoint_dir",
    "first_set",
    "is_operator_key",
    "is_true",
    "positive_int",
    "prestart_enabled",
    "savepoint_dir",
    "task_slots",
    "taskmanager_count",
]

#: The entry class that runs a PyFlink program (``-py script.py``) in a Flink cluster.
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"

#: Operator key: ``"false"`` makes savepoint and last-state upgrades stop the job before they start the new
#: cluster (the order before pre-started upgrades); on by default.
PRESTART_KEY = "flinkops.upgrade.prestart"

#: Operator keys of the crash-loop budget (``core/planner/crashloop.py``): retries after a failed start, the first
#: wait and the longest one.
CRASH_RETRIES_KEY = "flinkops.crash-loop.retries"
CRASH_BACKOFF_KEY = "flinkops.crash-loop.backoff"
CRASH_MAX_BACKOFF_KEY = "flinkops.crash-loop.max-backoff"
#: The reference operator's key for how often the progress of what happens inside Flink (a job starting, its first
#: checkpoint) is looked at between watch events: the operator's floor between a resource's passes
#: (``Controller._requeue``), 10 s by default; a resource's own value overrides the operator's.
PROGRESS_CHECK_KEY = "kubernetes.operator.observer.progress-check.interval"
#: Flink's key for how long a TaskManager may idle before it is released (a local session cluster's growth).
TASKMANAGER_IDLE_TIMEOUT_KEY = "resourcemanager.taskmanager-timeout"

#: How old the metrics Flink's REST API serves may be: its JobManager fetches them from the processes when asked,
#: at most this often (Flink's default is 10 s). flinkops asks for 2 s unless the spec says otherwise: the live
#: figures (records/s, backpressure) and the used CPU and memory a run records at its end are then at most 2 s
#: old; a job that ran 12 s otherwise reports the CPU its JVMs had used 8 s before its end.
METRICS_FETCH_KEY = "metrics.fetcher.update-interval"
METRICS_FETCH_MS = "2000"

CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")
SAVEPOINT_DIR_KEYS = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")
OPERATOR_KEY_PREFIXES = ("kubernetes.operator.", "job.autoscaler.", "flinkops.")
#: How long Flink's REST API serves a cached execution graph (job details, accumulators). flinkops renders a
#: shorter default than Flink's 3 s, so a finished job's final figures can be read soon after it ends (each read
#: of a job's details rebuilds the cache at most twice a second: nothing for a JobManager).
TASK_SLOTS_KEY = "taskmanager.numberOfTaskSlots"
SCHEDULER_KEY = "jobmanager.scheduler"
WEB_REFRESH_KEY = "web.refresh-interval"
DEFAULT_WEB_REFRESH = "500 ms"


def first_set(conf: Mapping[str, str], keys: Sequence[str]) -> str | None:
    """The value of the first of ``keys`` set to something non-blank (older spellings go last)."""
    for key in keys:
        value = conf.get(key, "").strip()
        if value:
            return value
    return None


def checkpoint_dir(conf: Mapping[str, str]) -> str | None:
    """The configured checkpoint directory, under either its Flink 2 or Flink 1 key."""
    return first_set(conf, CHECKPOINT_DIR_KEYS)


def savepoint_dir(conf: Mapping[str, str]) -> str | None:
    """The configured default savepoint directory, under either its Flink 2 or Flink 1 key."""
    return first_set(conf, SAVEPOINT_DIR_KEYS)


def is_operator_key(key: str) -> bool:
    return key.startswith(OPERATOR_KEY_PREFIXES)


def prestart_enabled(config: Mapping[str, str]) -> bool:
    """Whether an upgrade may start the new cluster before it stops the running job (``PRESTART_KEY``, on
    unless set to ``false``)."""
    value = config.get(PRESTART_KEY)
    return value is None or value.strip().lower() != "false"


def positive_int(config: Mapping[str, str], key: str) -> int | None:
    """A whole-number option of ``config`` that is at least 1; None when unset or anything else (validation
    refuses such values for the options flinkops reads itself)."""
    try:
        value = int(str(config.get(key, "")).strip())
    except ValueError:
        return None
    return value if value > 0 else None


def task_slots(config: Mapping[str, str]) -> int:
    """``taskmanager.numberOfTaskSlots`` as a number (Flink's default 1 when unset)."""
    return positive_int(config, TASK_SLOTS_KEY) or 1


def taskmanager_count(spec: FlinkDeploymentSpec, config: Mapping[str, str]) -> int:
    """TaskManagers to run: ``taskManager.replicas`` when set, else enough slots for the job's parallelism."""
    if spec.task_manager is not None and spec.task_manager.replicas is not None:
        return max(spec.task_manager.replicas, 0)
    parallelism = spec.job.parallelism if spec.job is not None and spec.job.parallelism else 1
    return max(1, math.ceil(parallelism / task_slots(config)))


def adaptive_scheduler(config: Mapping[str, str]) -> bool:
    """Whether the job runs on Flink's adaptive scheduler, which rescales a running job in place."""
    return config.get(SCHEDULER_KEY, "").strip().lower() == "adaptive"


def is_true(value: str | None) -> bool:
    """A Flink boolean option that is set to true (Flink reads ``true`` case-insensitively)."""
    return value is not None and value.strip().lower() == "true"
