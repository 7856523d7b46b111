"""Classify a spec change from field metadata: IGNORE < SCALE < UPGRADE < SAVEPOINT_REDEPLOY.

Each spec field declares its class with ``SpecDiff`` metadata in ``api.models``; a field without metadata is
UPGRADE. ``flinkConfiguration`` is classified per key: operator keys (``kubernetes.operator.*``,
``job.autoscaler.*``, ``flinkops.*``) and ``parallelism.default`` are IGNORE, everything else UPGRADE. Nonce
fields count only when they change to a non-null value. The planner branches on ``SpecChange.kind`` only.

Called by: the planner and ``flinkops plan``. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from flinkops.api.flinkconf import is_operator_key
from flinkops.api.models import DiffType, SpecDiff

__all__ = ["FieldChange", "SpecChange", "classify"]

_IGNORED_CONFIG_KEYS = frozenset({"parallelism.default"})


@dataclass(frozen=True)
class FieldChange:
    path: str
    kind: DiffType
    old: Any
    new: Any


@dataclass(frozen=True)
class SpecChange:
    kind: DiffType
    fields: tuple[FieldChange, ...]

    @property
    def changed(self) -> bool:
        return self.kind > DiffType.IGNORE

    def paths(self, at_least: DiffType = DiffType.SCALE) -> list[str]:
        return [f.path for f in self.fields if f.kind >= at_least]


def classify(old: BaseModel | None, new: BaseModel, *, mode: str = "native") -> SpecChange:
    """Every changed leaf with its class, and the aggregate (max) class."""
    changes: list[FieldChange] = []
    _walk(old, new, "spec", mode, changes)
    kind = max((c.kind for c in changes), default=DiffType.IGNORE)
    return SpecChange(kind=kind, fields=tuple(changes))


def _walk(old: BaseModel | None, new: BaseModel, path: str, mode: str, out: list[FieldChange]) -> None:
    for name, info in type(new).model_fields.items():
        alias = info.alias or name
        sub_path = f"{path}.{alias}"
        meta = next((m for m in info.metadata if isinstance(m, SpecDiff)), None)
        old_value = getattr(old, name) if old is not None else None
        new_value = getattr(new, name)
        if old_value == new_value:
            continue
        if name == "flink_configuration":
            _config_changes(old_value or {}, new_value or {}, sub_path, out)
            continue
        if meta is None and (isinstance(new_value, BaseModel) or isinstance(old_value, BaseModel)):
            if isinstance(new_value, BaseModel) and isinstance(old_value, BaseModel):
                _walk(old_value, new_value, sub_path, mode, out)
                continue
            if isinstance(new_value, BaseModel) and old_value is None:
                _walk(None, new_value, sub_path, mode, out)
                # A block appearing where nothing was is a change even when all its fields are defaults.
                out.append(FieldChange(sub_path, DiffType.UPGRADE, None, "<added>"))
                continue
            out.append(FieldChange(sub_path, DiffType.UPGRADE, "<removed>", None))
            continue
        if meta is None:
            out.append(FieldChange(sub_path, DiffType.UPGRADE, old_value, new_value))
            continue
        if meta.nonce and new_value is None:
            out.append(FieldChange(sub_path, DiffType.IGNORE, old_value, new_value))
            continue
        out.append(FieldChange(sub_path, meta.for_mode(mode), old_value, new_value))


def _config_changes(old: dict[str, str], new: dict[str, str], path: str, out: list[FieldChange]) -> None:
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        ignored = key in _IGNORED_CONFIG_KEYS or is_operator_key(key)
        kind = DiffType.IGNORE if ignored else DiffType.UPGRADE
        out.append(FieldChange(f"{path}.{key}", kind, old.get(key), new.get(key)))
