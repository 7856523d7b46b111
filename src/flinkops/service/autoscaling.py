"""``flinkops autoscaler NAME``: what the autoscaler decided for a FlinkDeployment, and why, for every front end.

:func:`report` reads the resource (``NotFound``, exit 2, when there is none) and gives its autoscaler settings
(``api.autoscaler``) beside the autoscaler's record in ``status.autoscaler`` (written by the controller each
pass: the state, the reason, per vertex the inputs, true processing rate, target rate and needed parallelism,
and the recent decisions). :func:`as_dict` is the stable ``-o json`` shape: the record's fields in their status
spelling plus ``name``, ``namespace``, ``enabled``, ``scalingEnabled``, ``inPlace``, ``specParallelism`` and
``settings``.

Called by: ``cli.autoscaler``; Python callers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from flinkops.api.autoscaler import AutoscalerSettings, autoscaler_settings
from flinkops.api.flinkconf import adaptive_scheduler
from flinkops.api.models import AutoscalerStatus
from flinkops.service.resources import deployment
from flinkops.service.target import Target

__all__ = ["AutoscalerReport", "as_dict", "report"]


@dataclass(frozen=True)
class AutoscalerReport:
    name: str
    namespace: str
    settings: AutoscalerSettings
    #: the rescale is done in place (the adaptive scheduler), else by a savepoint upgrade
    in_place: bool
    spec_parallelism: int | None
    record: AutoscalerStatus | None


def report(target: Target, name: str, namespace: str = "default") -> AutoscalerReport:
    found = deployment(target, name, namespace)
    config = found.spec.flink_configuration
    return AutoscalerReport(
        name=found.metadata.name,
        namespace=found.metadata.namespace,
        settings=autoscaler_settings(config),
        in_place=adaptive_scheduler(config),
        spec_parallelism=found.spec.job.parallelism if found.spec.job is not None else None,
        record=found.status.autoscaler if found.status is not None else None,
    )


def as_dict(found: AutoscalerReport) -> dict[str, Any]:
    settings = {to_camel(k): v for k, v in asdict(found.settings).items()}
    settings["maxUtilization"] = found.settings.upper_utilization
    settings["minUtilization"] = found.settings.lower_utilization
    record = found.record.model_dump(by_alias=True, mode="json") if found.record is not None else {}
    return {
        "name": found.name,
        "namespace": found.namespace,
        "enabled": found.settings.enabled,
        "scalingEnabled": found.settings.scaling_enabled,
        "inPlace": found.in_place,
        "specParallelism": found.spec_parallelism,
        "settings": settings,
        **record,
    }
