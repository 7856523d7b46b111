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

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from flinkops.api.durations import parse_duration_ms
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.core.cost import DEFAULT_PRICES, DeploymentCost, Prices, RunCost, resource_cost
from flinkops.errors import InvalidInput, NotFound, Problem
from flinkops.service.resources import resolve
from flinkops.service.target import Target

__all__ = [
    "DEFAULT_PRICES",
    "PRICES_FILE",
    "as_dict",
    "cost_of",
    "costs",
    "home_prices",
    "load_prices",
    "price_column",
    "since_ms",
]

Resource = FlinkDeployment | FlinkSessionJob

#: The file under the flinkops home read when no ``--prices`` is given.
PRICES_FILE = "prices.yaml"

_RATE = Field(default=None, ge=0, allow_inf_nan=False)


class _Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class _Compute(_Section):
    vcpu_hour: float | None = _RATE
    gib_hour: float | None = _RATE


class _Aws(_Section):
    kpu_hour: float | None = _RATE
    orchestration_kpus: int = Field(default=1, ge=0)


class _Ververica(_Section):
    cu_hour: float | None = _RATE


class _PriceFile(_Section):
    currency: str = Field(default="USD", min_length=1, max_length=8)
    compute: _Compute = Field(default_factory=_Compute)
    aws_managed_flink: _Aws = Field(default_factory=_Aws)
    ververica: _Ververica = Field(default_factory=_Ververica)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the value at ``loc`` in the composed YAML (of its nearest present parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if found is None:
            key = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            return key.start_mark.line + 1 if key is not None else line
        node, line = found, found.start_mark.line + 1
    return line


def load_prices(path: Path | None, home: Path) -> Prices:
    """The price table: ``path`` (it must exist), else ``<home>/prices.yaml`` when present, over the defaults."""
    chosen = path if path is not None else home / PRICES_FILE
    if path is None and not chosen.exists():
        return DEFAULT_PRICES
    hint = "fix the file, or remove it to use the built-in prices (flinkops cost --help shows the fields)"
    try:
        text = chosen.read_text()
    except OSError as exc:
        raise InvalidInput([Problem("--prices", f"cannot read {chosen}: {exc.strerror or exc}", hint)]) from exc
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{chosen}:{mark.line + 1}" if mark is not None else str(chosen)
        what = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput([Problem(where, f"not valid YAML: {what}", hint)]) from exc
    if data is None:
        return DEFAULT_PRICES
    if not isinstance(data, dict):
        raise InvalidInput([Problem(f"{chosen}:1", "a price table is a mapping (currency, compute, ...)", hint)])
    try:
        table = _PriceFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = _line_of(root, loc)
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(Problem(f"{chosen}:{line} {field}", error["msg"], hint))
        raise InvalidInput(problems) from exc
    # Only what the file sets replaces a default; an explicit null clears a rate (that column gets no price).
    rates: dict[str, Any] = {}
    sections: tuple[tuple[BaseModel, dict[str, str]], ...] = (
        (table, {"currency": "currency"}),
        (table.compute, {"vcpu_hour": "vcpu_hour", "gib_hour": "gib_hour"}),
        (table.aws_managed_flink, {"kpu_hour": "kpu_hour", "orchestration_kpus": "aws_orchestration_kpus"}),
        (table.ververica, {"cu_hour": "cu_hour"}),
    )
    for section, names in sections:
        for field, rate in names.items():
            if field in section.model_fields_set:
                rates[rate] = getattr(section, field)
    return replace(DEFAULT_PRICES, **rates)


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


def home_prices(home: Path) -> Prices:
    """The home's price table for a reader that reports no errors (the fleet page, ``top``, ``describe``, the
    metrics): ``<home>/prices.yaml`` over the built-in rates, or the built-in table alone when that file does not
    parse (``flinkops cost`` reports its error)."""
    try:
        return load_prices(None, home)
    except InvalidInput:
        return DEFAULT_PRICES


def costs(
    target: Target,
    name: str | None,
    namespace: str | None,
    prices: Prices,
    *,
    since: str | None = None,
) -> list[DeploymentCost]:
    """The cost of the resource ``name`` in ``namespace`` (a name that does not exist is ``InvalidInput``), or of
    every resource in ``namespace`` (every namespace when None)."""
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
    return [cost_of(r, now_ms, prices, since=start) for r in found]


def _run_dict(run: RunCost) -> dict[str, Any]:
    body = {k: v for k, v in asdict(run).items() if k not in ("requested", "notes")}
    body["requested"] = run.requested.model_dump(by_alias=True) if run.requested is not None else None
    body["efficiency"] = run.efficiency
    body["cpu_utilisation"] = run.cpu_utilisation
    body["memory_utilisation"] = run.memory_utilisation
    body["notes"] = list(run.notes)
    return {_camel(k): v for k, v in body.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


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
    totals.update({_camel(name): cost.total(name) for name in _TOTALS})
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


def price_column(target: Target, prices: Prices | None = None) -> Callable[[Mapping[str, Any]], str | None]:
    """The fleet page's and ``top``'s cost column (``service.fleet.CostHook``): a stored object (CRD shape) to its
    price so far (``"0.42 USD"``), or None when no rate prices it. The price table is the home's (the built-in one
    when the home's does not parse: ``flinkops cost`` reports that file's error). Objects are read into models
    once per resourceVersion, so a page of 500 deployments costs the arithmetic only."""
    table = prices if prices is not None else home_prices(target.home)
    models: dict[tuple[str, str, str], tuple[str, Resource | None]] = {}

    def column(document: Mapping[str, Any]) -> str | None:
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
                resource = None  # an object the store holds but the models refuse: no price rather than no page
            cached = models[key] = (version, resource)
        if cached[1] is None:
            return None
        total = cost_of(cached[1], int(target.clock.now() * 1000), table).total("price")
        return None if total is None else f"{total:.2f} {table.currency}"

    return column
