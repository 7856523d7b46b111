"""The CustomResourceDefinitions of ``FlinkDeployment`` and ``FlinkSessionJob``, generated from the api models.

What: :func:`custom_resource_definitions` returns the ``apiextensions.k8s.io/v1`` CRDs
``flinkdeployments.flink.apache.org`` and ``flinksessionjobs.flink.apache.org`` (version ``v1beta1``, served and
stored) as plain dicts, ready to be dumped as YAML or JSON. Their OpenAPI v3 schemas come from the pydantic models'
JSON schema (:func:`structural_schema` does the conversion), so a field added to ``models.py`` shows up in the CRD
without a second hand-written copy.

Who calls it: ``flinkops crds`` (prints them for ``kubectl apply -f -``; the Helm chart's ``crds/`` are meant to be
its output), whatever else installs flinkops on a cluster, and the tests that hold the invariants below
(``tests/unit/test_crds.py``, ``tests/unit/test_crd_compat.py``).

Invariants:

* **Structural** (what a kube-apiserver demands of a v1 CRD): every node has a ``type`` unless it is
  ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``; no ``$ref``, no ``anyOf`` with
  ``null``, no ``additionalProperties`` next to ``properties``; the root's ``metadata`` is just ``type: object``.
* **A superset of the reference operator's CRDs**: every object the Apache Flink Kubernetes Operator's CRDs accept
  is accepted here, and nothing it keeps is pruned, so these CRDs can replace the reference ones under existing
  objects. Where a model is deliberately stricter than the reference (an enum where the reference takes any
  string, a field the validator requires), the CRD widens back (``_WIDEN_ENUM``, no ``required``); the models stay
  the validator, and report such problems with their paths (``flinkops apply``, the controller's status error),
  as the reference operator's validator does.
* **No defaults**: the apiserver would write them into stored objects, so a user's ``kubectl get -o yaml`` would no
  longer be what they applied, and spec diffs would see fields nobody wrote. The models apply defaults on read.
* Pure: no I/O; the same call returns equal dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from flinkops.api.models import API_VERSION, FlinkDeployment, FlinkSessionJob

__all__ = [
    "CRD_NAMES",
    "GROUP",
    "VERSION",
    "custom_resource_definitions",
    "flink_deployment_crd",
    "flink_session_job_crd",
    "structural_schema",
]

GROUP, VERSION = API_VERSION.split("/")
CRD_NAMES: Final = ("flinkdeployments.flink.apache.org", "flinksessionjobs.flink.apache.org")

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"

# ``flinkConfiguration`` is a flat string map in the model, but its before-validator also takes nested YAML
# (``ConfigObjectNode`` in the reference) and non-string scalars, so the model's JSON schema
# (``additionalProperties: string``) would make the apiserver reject YAML users already write. The reference
# keeps it open, without a type; so do we.
_FLINK_CONFIGURATION: Final[dict[str, Any]] = {
    "description": (
        "Flink configuration overrides: a flat map of Flink keys to values, or the same keys as nested YAML."
    ),
    _PRESERVE: True,
}

# Schema paths (``.`` between properties, ``[]`` for array items, ``{}`` for map values) whose converted schema
# is replaced as a whole.
_REPLACE: Final[Mapping[str, Mapping[str, Any]]] = {
    "spec.flinkConfiguration": _FLINK_CONFIGURATION,
}

# Paths where the model checks an enum that the reference CRD does not: the model's check stays (the better error,
# earlier), the CRD takes any string like the reference so objects valid there stay valid here.
_WIDEN_ENUM_COMMON: Final = frozenset(
    {"status.conditions[].status"}  # metav1.Condition's True/False/Unknown; the reference types it as a string
)
_WIDEN_ENUM_DEPLOYMENT: Final = _WIDEN_ENUM_COMMON | {
    "spec.imagePullPolicy",  # Kubernetes' own Pod validation rejects any other value later anyway
}

# Keywords that mean the same in pydantic's JSON schema and in a CRD's OpenAPI v3 schema.
_PASSTHROUGH: Final = frozenset({"pattern", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"})
# Keywords that constrain nothing a CRD needs to carry. ``required`` and ``default`` are dropped on purpose (see
# the module docstring); ``additionalProperties: false`` is the models' ``extra="forbid"``, which a structural
# schema cannot say (the apiserver prunes unknown fields, and ``kubectl`` warns or fails on them with field
# validation).
_DROPPED: Final = frozenset({"title", "default", "required", "examples"})
# Keywords :meth:`_Converter.convert` handles after the loop, by type.
_BY_TYPE: Final = frozenset({"type", "properties", "additionalProperties", "items"})


def structural_schema(
    model: type[BaseModel],
    *,
    replace: Mapping[str, Mapping[str, Any]] | None = None,
    widen_enum: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The Kubernetes structural OpenAPI v3 schema of ``model``'s input (validation-mode, camelCase aliases).

    ``replace`` and ``widen_enum`` name schema paths (``spec.job.state``, ``status.conditions[].status``) to
    replace or to relieve of their enum. Raises ``ValueError`` on a JSON-schema construct with no structural
    equivalent (a union of two object types, say) or on a path in ``replace``/``widen_enum`` that does not exist,
    so a model change cannot silently produce a CRD that a kube-apiserver rejects or that lost an override.
    """
    source = model.model_json_schema(by_alias=True, mode="validation")
    defs = source.pop("$defs", {})
    converter = _Converter(defs, replace or {}, widen_enum)
    schema = converter.convert(source, "")
    unused = (set(converter.replace) | converter.widen_enum) - converter.used
    if unused:
        raise ValueError(f"CRD schema overrides for paths the model does not have: {sorted(unused)}")
    return schema


class _Converter:
    def __init__(
        self, defs: Mapping[str, Any], replace: Mapping[str, Mapping[str, Any]], widen_enum: frozenset[str]
    ) -> None:
        self.defs = defs
        self.replace = replace
        self.widen_enum = widen_enum
        self.used: set[str] = set()

    def convert(self, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        if path in self.replace:
            self.used.add(path)
            return copy.deepcopy(dict(self.replace[path]))
        node = self._resolve(node, path)
        if "anyOf" in node:
            return self._union(node, path)
        if "const" in node:
            node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
        out: dict[str, Any] = {}
        kind = node.get("type")
        for key, value in node.items():
            if key in _DROPPED or key in _BY_TYPE:
                continue
            if key == "description":
                out[key] = " ".join(value.split())  # docstrings: one line each for ``kubectl explain``
            elif key in _PASSTHROUGH:
                out[key] = value
            elif key == "enum":
                if path in self.widen_enum:
                    self.used.add(path)
                else:
                    out["enum"] = list(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                # JSON Schema 2020-12 gives the bound itself; OpenAPI v3.0 (CRDs) a boolean next to minimum/maximum.
                out[key.replace("exclusiveM", "m")] = value
                out[key] = True
            else:
                raise ValueError(f"{path or '<root>'}: JSON schema keyword {key!r} has no CRD equivalent here")
        if kind is None:
            # ``Any``: whatever the user wrote is kept, as the reference does for its open fields.
            out[_PRESERVE] = True
            return out
        if not isinstance(kind, str) or kind == "null":
            raise ValueError(f"{path or '<root>'}: unsupported JSON schema type {kind!r}")
        out["type"] = kind
        if kind == "object":
            self._object(node, out, path)
        elif kind == "array":
            items = node.get("items")
            out["items"] = self.convert(items, f"{path}[]") if isinstance(items, Mapping) else {_PRESERVE: True}
        return out

    def _resolve(self, node: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        """Inline ``$ref`` (and pydantic's one-element ``allOf`` around one); sibling keys win over the target's."""
        if "allOf" in node and len(node["allOf"]) == 1:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        while "$ref" in node:
            ref = node["$ref"]
            prefix = "#/$defs/"
            if not ref.startswith(prefix) or ref[len(prefix) :] not in self.defs:
                raise ValueError(f"{path or '<root>'}: unresolvable $ref {ref!r}")
            target = self.defs[ref[len(prefix) :]]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def _union(self, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        # ``X | None``: a CRD field is optional by being absent, not by being null, so the null branch goes
        # (``dump_resource`` never writes nulls). Two scalar branches become the one CRD type that takes both.
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        branches = [self._resolve(b, path) for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            return self.convert({**branches[0], **rest}, path)
        kinds = {b.get("type") for b in branches}
        if len(kinds) != len(branches) or not all(set(b) <= {"type"} for b in branches):
            raise ValueError(f"{path or '<root>'}: a union of {branches} has no structural CRD equivalent")
        converted = self.convert({"type": "integer", **rest}, path)
        if kinds == {"number", "integer"}:
            converted["type"] = "number"  # OpenAPI ``number`` accepts integers too
            return converted
        if kinds == {"integer", "string"}:
            del converted["type"]
            converted[_INT_OR_STRING] = True
            return converted
        raise ValueError(f"{path or '<root>'}: a union of types {sorted(map(str, kinds))} has no CRD equivalent")

    def _object(self, node: Mapping[str, Any], out: dict[str, Any], path: str) -> None:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            if isinstance(extra, Mapping) and extra:
                raise ValueError(f"{path or '<root>'}: an object with both properties and a map schema")
            out["properties"] = {
                name: self.convert(sub, f"{path}.{name}" if path else name) for name, sub in properties.items()
            }
        elif isinstance(extra, Mapping) and extra:
            out["additionalProperties"] = self.convert(extra, f"{path}{{}}")
        else:
            # ``dict[str, Any]`` (a pod template, Kubernetes resource requirements, an ingress TLS entry): kept as
            # written. The reference types some of these in full; an open object accepts everything they do.
            out[_PRESERVE] = True


# ------------------------------------------------------------------------------------------------ the CRDs

_ROOT_FIELDS: Final[dict[str, Any]] = {
    "apiVersion": {
        "description": "The versioned schema of this representation of an object (flink.apache.org/v1beta1).",
        "type": "string",
    },
    "kind": {"description": "The REST resource this object represents.", "type": "string"},
    # The apiserver validates metadata itself; a CRD may only narrow name/generateName here, and need not.
    "metadata": {"type": "object"},
}

_STATUS_COLUMNS: Final[list[dict[str, Any]]] = [
    {
        "name": "Job Status",
        "type": "string",
        "jsonPath": ".status.jobStatus.state",
        "description": "The Flink job's state (RUNNING, FAILED, ...).",
        "priority": 0,
    },
    {
        "name": "Lifecycle State",
        "type": "string",
        "jsonPath": ".status.lifecycleState",
        "description": "Where the resource is in its lifecycle (CREATED, DEPLOYED, STABLE, ...).",
        "priority": 0,
    },
    # With any additionalPrinterColumns the apiserver no longer adds Age itself.
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "priority": 0},
]


def _root_schema(model: type[BaseModel], description: str, widen_enum: frozenset[str]) -> dict[str, Any]:
    schema = structural_schema(model, replace=_REPLACE, widen_enum=widen_enum)
    properties = schema["properties"]
    properties.update(copy.deepcopy(_ROOT_FIELDS))
    return {"description": description, "type": "object", "properties": properties}


def _crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    subresources: dict[str, Any],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": subresources,
                    "additionalPrinterColumns": copy.deepcopy(_STATUS_COLUMNS),
                }
            ],
        },
    }


def flink_deployment_crd() -> dict[str, Any]:
    """The ``flinkdeployments.flink.apache.org`` CRD: status subresource, and a scale subresource on
    ``spec.taskManager.replicas`` so ``kubectl scale`` and a HorizontalPodAutoscaler can drive TaskManagers."""
    return _crd(
        kind="FlinkDeployment",
        plural="flinkdeployments",
        short_names=["flinkdep"],
        schema=_root_schema(
            FlinkDeployment,
            "A Flink cluster (session or application) and its job, if any.",
            _WIDEN_ENUM_DEPLOYMENT,
        ),
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.taskManager.replicas",
                "statusReplicasPath": ".status.taskManager.replicas",
                "labelSelectorPath": ".status.taskManager.labelSelector",
            },
        },
    )


def flink_session_job_crd() -> dict[str, Any]:
    """The ``flinksessionjobs.flink.apache.org`` CRD: a job submitted to a session-mode FlinkDeployment."""
    return _crd(
        kind="FlinkSessionJob",
        plural="flinksessionjobs",
        short_names=["sessionjob"],
        schema=_root_schema(
            FlinkSessionJob,
            "A Flink job submitted to a session cluster (a FlinkDeployment).",
            _WIDEN_ENUM_COMMON,
        ),
        subresources={"status": {}},
    )


def custom_resource_definitions() -> list[dict[str, Any]]:
    """Both CRDs, FlinkDeployment first (the order ``kubectl apply`` creates them in)."""
    return [flink_deployment_crd(), flink_session_job_crd()]
