"""The operations users take on Flink jobs, for every front end: the CLI, an Airflow provider, a web page.

Each operation is a plain function that takes a ``Target`` (where resources live: ``LocalTarget`` or
``KubernetesTarget``) and returns frozen dataclasses, or raises the ``flinkops.errors`` taxonomy: ``InvalidInput``
(every problem with its field path; nothing was changed), ``NotFound``, ``FlinkopsError``. Nothing here prints,
parses arguments or exits; front ends present the results.

    from pathlib import Path
    from flinkops.service import LocalTarget, apply, read_files, get, plan

    target = LocalTarget()                     # $FLINKOPS_HOME, default ./.flinkops
    resources = read_files(target, [Path("job.yaml")])
    print(plan(target, resources))             # what apply would do, changing nothing
    for applied in apply(target, resources):   # validated as a whole first
        print(applied.key, applied.outcome)
    print(get(target, "fraud-scoring").lifecycle)

Names load on first use (PEP 562): ``flinkops get`` imports only what reading the store needs.

Validation, restore-path preflight and config rendering live here (``inputs``, ``config``) or below, once; adapters
are built only by ``service.target``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flinkops.service.applying import Applied, apply
    from flinkops.service.changes import (
        Deletion,
        JobStateChange,
        RollingBack,
        delete,
        deletion_order,
        request_deletion,
        resume,
        rollback,
        suspend,
        wait_deleted,
    )
    from flinkops.service.cost import cost_of, costs, load_prices
    from flinkops.service.description import Description, describe, log_files
    from flinkops.service.following import follow
    from flinkops.service.inputs import check, load_text, read_files
    from flinkops.service.outcomes import JobOutcome, outcome
    from flinkops.service.planning import LintReport, PlanReport, lint, plan
    from flinkops.service.resources import ResourceView, get, list_resources, resolve
    from flinkops.service.snapshots import (
        Catalogue,
        Restore,
        Trigger,
        catalogue,
        checkpoint,
        restore,
        savepoint,
        trigger,
        wait_taken,
    )
    from flinkops.service.target import KubernetesTarget, LocalTarget, Target
    from flinkops.service.waiting import Settled, wait_settled, wait_stable

_EXPORTS = {
    "applying": ("Applied", "apply"),
    "changes": (
        "Deletion",
        "JobStateChange",
        "RollingBack",
        "delete",
        "deletion_order",
        "request_deletion",
        "resume",
        "rollback",
        "suspend",
        "wait_deleted",
    ),
    "cost": ("cost_of", "costs", "load_prices"),
    "description": ("Description", "describe", "log_files"),
    "following": ("follow",),
    "inputs": ("check", "load_text", "read_files"),
    "outcomes": ("JobOutcome", "outcome"),
    "planning": ("LintReport", "PlanReport", "lint", "plan"),
    "resources": ("ResourceView", "get", "list_resources", "resolve"),
    "snapshots": (
        "Catalogue",
        "Restore",
        "Trigger",
        "catalogue",
        "checkpoint",
        "restore",
        "savepoint",
        "trigger",
        "wait_taken",
    ),
    "target": ("KubernetesTarget", "LocalTarget", "Target"),
    "waiting": ("Settled", "wait_settled", "wait_stable"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Applied",
    "Catalogue",
    "Deletion",
    "Description",
    "JobOutcome",
    "JobStateChange",
    "KubernetesTarget",
    "LintReport",
    "LocalTarget",
    "PlanReport",
    "ResourceView",
    "Restore",
    "RollingBack",
    "Settled",
    "Target",
    "Trigger",
    "apply",
    "catalogue",
    "check",
    "checkpoint",
    "cost_of",
    "costs",
    "delete",
    "deletion_order",
    "describe",
    "follow",
    "get",
    "lint",
    "list_resources",
    "load_prices",
    "load_text",
    "log_files",
    "outcome",
    "plan",
    "read_files",
    "request_deletion",
    "resolve",
    "restore",
    "resume",
    "rollback",
    "savepoint",
    "suspend",
    "trigger",
    "wait_deleted",
    "wait_settled",
    "wait_stable",
    "wait_taken",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'flinkops.service' has no attribute {name!r}")
    return getattr(importlib.import_module(f"flinkops.service.{module}"), name)
