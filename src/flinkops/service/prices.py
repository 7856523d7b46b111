"""The price table ``flinkops cost`` prices runs with: ``<home>/prices.yaml`` (or ``--prices FILE``) over the
built-in rates (``core.cost.DEFAULT_PRICES``); a bad file is ``InvalidInput`` naming its line and field.

Apart from ``service.cost`` so that the target (the controller's metrics price their cost series) can read it
without importing the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from flinkops.core.cost import DEFAULT_PRICES, Prices
from flinkops.errors import InvalidInput, Problem

__all__ = ["PRICES_FILE", "home_prices", "load_prices"]

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


def home_prices(home: Path) -> Prices:
    """The home's price table for a reader that reports no errors (the fleet page, ``top``, ``describe``, the
    metrics): ``<home>/prices.yaml`` over the built-in rates, or the built-in table alone when that file does not
    parse (``flinkops cost`` reports its error)."""
    try:
        return load_prices(None, home)
    except InvalidInput:
        return DEFAULT_PRICES
