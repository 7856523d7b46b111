"""The persisted shape of a reconciled spec, and comparisons between specs.

``status.reconciliationStatus.lastReconciledSpec`` / ``lastStableSpec`` hold a JSON string
``{"spec": {...}, "resource_metadata": {"apiVersion": ..., "firstDeployment": bool}}`` exactly as the reference
operator writes it, so tooling that reads one reads the other. The JSON is canonical (sorted keys, no
whitespace) so two equal specs are equal strings.

Called by: the planner, lifecycle derivation, the CLI. Pure.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flinkops.api.models import API_VERSION, FlinkDeploymentSpec, FlinkSessionJobSpec

__all__ = ["dump_reconciled_spec", "load_spec", "parse_reconciled_spec", "reconciled_first_deployment", "spec_dict"]

Spec = FlinkDeploymentSpec | FlinkSessionJobSpec
S = TypeVar("S", FlinkDeploymentSpec, FlinkSessionJobSpec)


def spec_dict(spec: Spec) -> dict[str, Any]:
    """The spec as CRD-shaped JSON data (camelCase, no nulls)."""
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


def dump_reconciled_spec(spec: Spec, *, first_deployment: bool) -> str:
    body = {
        "spec": spec_dict(spec),
        "resource_metadata": {"apiVersion": API_VERSION, "firstDeployment": first_deployment},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _body(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def parse_reconciled_spec(text: str | None) -> dict[str, Any]:
    """The ``spec`` part of a recorded spec string ({} when absent or unreadable)."""
    spec = _body(text).get("spec")
    return spec if isinstance(spec, dict) else {}


def reconciled_first_deployment(text: str | None) -> bool:
    """Whether the recorded spec is still the one the resource was first deployed with."""
    meta = _body(text).get("resource_metadata")
    return isinstance(meta, dict) and meta.get("firstDeployment") is True


def load_spec(text: str | None, kind: type[S]) -> S | None:
    data = parse_reconciled_spec(text)
    if not data:
        return None
    return kind.model_validate(data)
