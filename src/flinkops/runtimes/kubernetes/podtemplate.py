"""Pod-template merging for the Kubernetes render: user templates over each other, flinkops' items over both.

``spec.podTemplate`` is the base of both components; ``spec.jobManager.podTemplate`` /
``spec.taskManager.podTemplate`` are merged over it (:func:`merge_pod_templates`): mappings merge key by key
(override wins, ``null`` in the override means "no opinion"); a list whose items all carry a ``name``
(containers, initContainers, volumes, env, ports, volumeMounts, imagePullSecrets) merges item by item by that
name, new names appended; any other list is replaced by the override. The reference operator merges lists by
*position* unless ``kubernetes.operator.pod-template.merge-arrays-by-name: true`` (:data:`MERGE_BY_NAME_KEY`);
merging by position renames containers and drops env variables as soon as the two lists differ in order, so
flinkops merges by name by default and keeps the positional merge for YAML that sets the option to ``false``.
:func:`upsert_named` then puts flinkops' own env variables, ports, volumes and mounts over the template's, and
:func:`main_container` finds (or creates) ``flink-main-container``.

Called by: the render context (the JobManager template's image and pull policy) and the pod builders
(``pods.py``). Invariants: pure; the inputs are never modified (results are deep copies), except by
:func:`main_container`, which adds the main container to the template it is given when it has none.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from flinkops.api.plugins import MAIN_CONTAINER

__all__ = [
    "MERGE_BY_NAME_KEY",
    "find_main_container",
    "main_container",
    "merge_pod_templates",
    "upsert_named",
]

#: The reference's option that switches its pod-template list merge from by-position to by-name.
MERGE_BY_NAME_KEY = "kubernetes.operator.pod-template.merge-arrays-by-name"


def merge_pod_templates(
    base: Mapping[str, Any] | None, override: Mapping[str, Any] | None, *, by_name: bool = True
) -> dict[str, Any]:
    """``override`` merged over ``base`` (neither is modified; see the module docstring for the rules).

    ``by_name=False`` is the reference operator's default: lists merge by position (item ``i`` of the override
    merged into item ``i`` of the base, extra items appended).
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base)) if base else {}
    if override:
        _merge_into(merged, override, by_name)
    return merged


def _merge_into(target: dict[str, Any], source: Mapping[str, Any], by_name: bool) -> None:
    for key, value in source.items():
        if value is None:
            continue  # YAML `key:` with nothing after it says nothing; it must not erase the base
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge_into(current, value, by_name)
        elif isinstance(current, list) and isinstance(value, list):
            target[key] = _merge_lists(current, value, by_name)
        else:
            target[key] = copy.deepcopy(value)


def _named(items: Sequence[Any]) -> bool:
    return all(isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in items)


def _merge_lists(base: list[Any], override: list[Any], by_name: bool) -> list[Any]:
    if by_name:
        if not (_named(base) and _named(override)):
            return copy.deepcopy(override)
        merged: dict[str, Any] = {item["name"]: copy.deepcopy(item) for item in base}
        for item in override:
            existing = merged.get(item["name"])
            if isinstance(existing, dict):
                _merge_into(existing, item, by_name)
            else:
                merged[item["name"]] = copy.deepcopy(item)
        return list(merged.values())
    result = copy.deepcopy(base)
    for index, item in enumerate(override):
        if index < len(result) and isinstance(result[index], dict) and isinstance(item, Mapping):
            _merge_into(result[index], item, by_name)
        elif index < len(result):
            result[index] = copy.deepcopy(item)
        else:
            result.append(copy.deepcopy(item))
    return result


def upsert_named(items: list[Any] | None, entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``items`` with each of ``entries`` replacing the item of the same name (or appended): flinkops' own
    env variables, ports, volumes and mounts win over a template's item of the same name."""
    result = [copy.deepcopy(i) for i in (items or [])]
    for entry in entries:
        for index, item in enumerate(result):
            if isinstance(item, Mapping) and item.get("name") == entry["name"]:
                result[index] = copy.deepcopy(dict(entry))
                break
        else:
            result.append(copy.deepcopy(dict(entry)))
    return result


def find_main_container(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The template's ``flink-main-container`` as it is, or an empty mapping (the template is not changed)."""
    spec = template.get("spec") if template else None
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    for container in containers if isinstance(containers, list) else []:
        if isinstance(container, Mapping) and container.get("name") == MAIN_CONTAINER:
            return container
    return {}


def main_container(template: dict[str, Any]) -> dict[str, Any]:
    """The template's ``flink-main-container``, created (first, so ``kubectl logs`` picks it) if missing."""
    pod_spec = template.setdefault("spec", {})
    containers = pod_spec.setdefault("containers", [])
    for container in containers:
        if isinstance(container, dict) and container.get("name") == MAIN_CONTAINER:
            return container
    container = {"name": MAIN_CONTAINER}
    containers.insert(0, container)
    return container
