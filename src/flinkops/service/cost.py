"""``flinkops cost``: what each deployment's runs cost, for every front end (the CLI, ``describe``, the web page,
``top``, the metrics).

``cost_of(resource, now_ms, prices)`` prices one resource from its recorded runs (``core.cost`` does the
arithmetic; this module picks what to price by and reads the price table). ``costs`` does it for a name or a
namespace of a target. ``as_dict`` is the stable ``-o json`` shape.

The price table: built-in defaults (``DEFAULT_PRICES``), replaced field by field by a YAML file, ``--prices FILE``
or else ``<FLINKOPS_HOME>/prices.yaml`` when it exists. A file that does not parse or has a bad field is
``InvalidInput`` naming the file, the line and the field path.

Called by: ``cli.cost``, ``cli.show`` (describe), the fleet page and ``top`` (``price_column``), the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from flinkops.api.durations import parse_duration_ms
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.core.cost import DEFAULT_PRICES, DeploymentCost, Prices, RunCost, cluster_up, price_text, resource_cost
from flinkops.errors import InvalidInput, NotFound, Problem
from flinkops.ports import ResourceKey
from flinkops.ports.flink import JobFigures
from flinkops.service.fleet import ReportHook
from flinkops.service.prices import PRICES_FILE, home_prices, load_prices
from flinkops.service.resources import resolve
from flinkops.service.target import Target, live_figures

__all__ = [
    "DEFAULT_PRICES",
    "PRICES_FILE",
    "as_dict",
    "cost_of",
    "cost_report",
    "costs",
    "home_prices",
    "load_prices",
    "price_column",
    "since_ms",
]

Resource = FlinkDeployment | FlinkSessionJob


def since_ms(text: str | None, now_ms: int) -> int | None:
    """The start of the window ``--since DURATION`` asks for (``24h``, ``30 min``, ``7d``)."""
    if text is None:
        return None
    hint = "give a duration with a unit, e.g. 24h, 30min, 7d"
    if text.strip().isdigit():
        raise InvalidInput([Problem("--since", f"{text!r} has no unit", hint)])
    try:
        return now_ms - parse_duration_ms(text)
    except ValueError as exc:
        raise InvalidInput([Problem("--since", str(exc), hint)]) from exc


def cost_of(
    resource: Resource,
    now_ms: int,
    prices: Prices = DEFAULT_PRICES,
    *,
    busy_ratio: float | None = None,
    checkpoints: int | None = None,
    since: int | None = None,
) -> DeploymentCost:
    """What ``resource``'s runs cost up to ``now_ms`` (from ``since``, epoch ms, when given). ``busy_ratio``: the
    running job's busy time per second (0-1), from Flink's ``busyTimeMsPerSecond``, and ``checkpoints`` its completed
    checkpoints, when the caller read them from Flink (the metrics module does; this function does no I/O).

    A session job's runs share their session cluster: they get wall time, downtime and checkpoints, and their
    resources are priced on the session cluster (its FlinkDeployment). ``core.cost.resource_cost`` does the work
    (the metrics, a layer below, call it directly)."""
    return resource_cost(resource, now_ms, prices, busy_ratio=busy_ratio, checkpoints=checkpoints, since=since)


def costs(
    target: Target,
    name: str | None,
    namespace: str | None,
    prices: Prices,
    *,
    since: str | None = None,
    live: bool = True,
) -> list[DeploymentCost]:
    """The cost of the resource ``name`` in ``namespace`` (a name that does not exist is ``InvalidInput``), or of
    every resource in ``namespace`` (every namespace when None). ``live``: a running run's busy share and
    checkpoint count are asked of its JobManager (``live_readings``)."""
    now_ms = int(target.clock.now() * 1000)
    start = since_ms(since, now_ms)
    if name is not None:
        try:
            found = [resolve(target, name, namespace or "default")]
        except NotFound as exc:
            raise InvalidInput(
                [Problem("NAME", str(exc), "flinkops get lists the resources; -n chooses the namespace")]
            ) from exc
    else:
        found = [r for r in target.store().list_resources() if namespace is None or r.metadata.namespace == namespace]
        found = [r for r in found if not r.is_canary]
        found.sort(key=lambda r: (r.metadata.namespace, r.kind, r.metadata.name))
    readings = live_readings(target, found) if live else {}
    return [cost_of(r, now_ms, prices, since=start, **readings.get(ResourceKey.of(r), {})) for r in found]


def live_readings(target: Target, resources: Sequence[Resource]) -> dict[ResourceKey, dict[str, Any]]:
    """For each of ``resources`` whose cluster runs, what its JobManager says now that the cost uses for the running
    run (``cost_of``'s ``busy_ratio`` and ``checkpoints``): read concurrently, within a few seconds, through the
    reader the page and the metrics use; a JobManager that does not answer leaves them unknown."""
    if not any(cluster_up(r) for r in resources):
        return {}
    wanted = {ResourceKey.of(r) for r in resources if cluster_up(r)}
    read = live_figures(target.store().list_resources(), wanted)  # all of them: a session job's cluster is there
    return {key: figures_readings(found) for key, found in read.items() if found is not None}


def figures_readings(found: JobFigures) -> dict[str, Any]:
    """``cost_of``'s live arguments from a job's live figures."""
    return {"busy_ratio": found.busy_ratio, "checkpoints": found.checkpoints_completed}


def _run_dict(run: RunCost) -> dict[str, Any]:
    body = {k: v for k, v in asdict(run).items() if k not in ("requested", "notes")}
    body["requested"] = run.requested.model_dump(by_alias=True) if run.requested is not None else None
    body["efficiency"] = run.efficiency
    body["cpu_utilisation"] = run.cpu_utilisation
    body["memory_utilisation"] = run.memory_utilisation
    body["notes"] = list(run.notes)
    return {to_camel(k): v for k, v in body.items()}


_TOTALS = (
    "vcpu_seconds",
    "gib_seconds",
    "slot_seconds",
    "busy_slot_seconds",
    "idle_tail_ms",
    "downtime_ms",
    "checkpoints",
    "kpu_hours",
    "cu_hours",
    "price",
    "aws_price",
    "ververica_price",
    "used_vcpu_seconds",
    "used_gib_seconds",
    "state_gib_hours",
    "checkpoint_bytes",
)


def as_dict(cost: DeploymentCost) -> dict[str, Any]:
    """The ``-o json`` shape of one resource's cost (stable: fields are only ever added)."""
    totals: dict[str, Any] = {
        "wallMs": cost.wall_ms,
        "efficiency": cost.efficiency,
        "cpuUtilisation": cost.cpu_utilisation,
        "memoryUtilisation": cost.memory_utilisation,
    }
    totals.update({to_camel(name): cost.total(name) for name in _TOTALS})
    return {
        "kind": cost.kind,
        "namespace": cost.namespace,
        "name": cost.name,
        "currency": cost.currency,
        "sinceMs": cost.since_ms,
        "nowMs": cost.now_ms,
        "total": totals,
        "runs": [_run_dict(r) for r in cost.runs],
    }


def _reader(
    target: Target, prices: Prices | None
) -> tuple[Prices, Callable[[Mapping[str, Any], JobFigures | None], DeploymentCost | None]]:
    """The price table (the home's, or the built-in one when the home's does not parse: ``flinkops cost`` reports
    that file's error) and a stored object (CRD shape) to its cost up to now. Objects are read into models once per
    resourceVersion, so a page of 500 deployments costs the arithmetic only; an object the models refuse has no
    cost (None) rather than no page."""
    table = prices if prices is not None else home_prices(target.home)
    models: dict[tuple[str, str, str], tuple[str, Resource | None]] = {}

    def cost(document: Mapping[str, Any], figures: JobFigures | None = None) -> DeploymentCost | None:
        meta = document.get("metadata") or {}
        key = (str(document.get("kind")), str(meta.get("namespace")), str(meta.get("name")))
        version = str(meta.get("resourceVersion") or meta.get("generation") or "")
        cached = models.get(key)
        if cached is None or cached[0] != version:
            model: type[FlinkDeployment] | type[FlinkSessionJob] = (
                FlinkDeployment if key[0] == "FlinkDeployment" else FlinkSessionJob
            )
            try:
                resource: Resource | None = model.model_validate(document)
            except ValidationError:
                resource = None
            cached = models[key] = (version, resource)
        if cached[1] is None:
            return None
        readings = figures_readings(figures) if figures is not None else {}
        return cost_of(cached[1], int(target.clock.now() * 1000), table, **readings)

    return table, cost


def price_column(target: Target, prices: Prices | None = None) -> Callable[[Mapping[str, Any]], str | None]:
    """The fleet page's and ``top``'s cost column (``service.fleet.CostHook``): a stored object to its price so far
    (``"0.42 USD"``), or None when no rate prices it."""
    table, cost = _reader(target, prices)

    def column(document: Mapping[str, Any]) -> str | None:
        found = cost(document, None)
        total = found.total("price") if found is not None else None
        return None if total is None else price_text(total, table.currency)

    return column


def cost_report(target: Target, prices: Prices | None = None) -> ReportHook:
    """A deployment page's cost section (``service.fleet.ReportHook``): a stored object, with its running job's live
    figures when the page has them, to the report ``flinkops cost NAME -o json`` gives (``as_dict``), or None when
    its object does not read."""
    _, cost = _reader(target, prices)

    def report(document: Mapping[str, Any], figures: JobFigures | None = None) -> dict[str, Any] | None:
        found = cost(document, figures)
        return as_dict(found) if found is not None else None

    return report
