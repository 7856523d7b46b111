"""Checks on CustomResourceDefinitions for the tests: where the reference CRDs are, whether one schema accepts
everything another accepts, whether a CRD is structural, and a JSON-schema form of a CRD schema for ``jsonschema``.

Used by ``tests/unit/test_crd_compat.py`` and ``tests/unit/test_crds.py``. Each check returns *every* problem,
with its schema path (``spec.podTemplate.spec.containers[].ports[].containerPort``; ``[]`` is an array item,
``{}`` a map value), so one run shows all mismatches.

The rules are the kube-apiserver's (``k8s.io/apiextensions-apiserver``: ``pkg/apiserver/schema/validation.go``
for structural schemas, ``pkg/apis/apiextensions/validation/validation.go`` for the CRD), restated for the
constructs the flinkops generator can emit; a live apiserver test is the final word.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REFERENCE_ENV = "FLINKOPS_REFERENCE_CRDS"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE_DIR = REPO.parent / "shared" / "reference" / "crds"
REFERENCE_FILES = {
    "flinkdeployments.flink.apache.org": "flinkdeployments.flink.apache.org-v1.yml",
    "flinksessionjobs.flink.apache.org": "flinksessionjobs.flink.apache.org-v1.yml",
}

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
ALL_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
# Keywords that make a schema reject values that an otherwise equal schema accepts.
RESTRICTING = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "not",
    "oneOf",
    "allOf",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
)


# ------------------------------------------------------------------------------------------------ reference CRDs


def reference_dir() -> Path:
    """``$FLINKOPS_REFERENCE_CRDS``, else ``../shared/reference/crds`` next to the repository."""
    configured = os.environ.get(REFERENCE_ENV)
    return Path(configured) if configured else DEFAULT_REFERENCE_DIR


def reference_crd(name: str) -> dict[str, Any]:
    """The reference operator's CRD ``name``; skips the calling test, naming the path, when it is not there."""
    path = reference_dir() / REFERENCE_FILES[name]
    if not path.is_file():
        pytest.skip(
            f"reference CRD {name} not found at {path} (set {REFERENCE_ENV} to the directory holding "
            f"{REFERENCE_FILES[name]}); the compatibility check did NOT run"
        )
    return copy.deepcopy(_load(path))


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    # The FlinkDeployment CRD is 11,000 lines; parse it once per run, with libyaml when available.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
    return loaded


def only_version(crd: Mapping[str, Any]) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    assert len(versions) == 1, f"{crd['metadata']['name']}: expected one version, got {len(versions)}"
    version: dict[str, Any] = versions[0]
    return version


def root_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = only_version(crd)["schema"]["openAPIV3Schema"]
    return schema


# ------------------------------------------------------------------------------------------------ compatibility


@dataclass
class Compat:
    """The outcome of :func:`compare`: every reference path walked, and every way ours accepts less."""

    walked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # reference paths that ours keeps without checking them (under an open object), by the open ancestor
    open_under: dict[str, int] = field(default_factory=dict)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '<root>'}: {message}")


def children(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(relation, child path, child schema)`` for the properties, map values and array items of ``node``."""
    for name, sub in (node.get("properties") or {}).items():
        yield "property", f"{path}.{name}" if path else name, sub
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield "map", f"{path}{{}}", extra
    items = node.get("items")
    if isinstance(items, Mapping):
        yield "items", f"{path}[]", items


def all_paths(node: Mapping[str, Any], path: str = "") -> list[str]:
    """Every schema path of ``node``, ``node`` included: what :func:`compare` must walk."""
    paths = [path]
    for _, child_path, child in children(node, path):
        paths.extend(all_paths(child, child_path))
    return paths


def accepted_types(node: Mapping[str, Any]) -> frozenset[str]:
    """The JSON value types a schema node lets through (``null`` only when nullable)."""
    nullable = {"null"} if node.get("nullable") else set()
    if node.get(INT_OR_STRING):
        return frozenset({"integer", "string"} | nullable)
    kind = node.get("type")
    if kind is None:
        if "anyOf" in node:
            union: set[str] = set()
            for branch in node["anyOf"]:
                union |= accepted_types(branch)
            return frozenset(union | nullable)
        return ALL_TYPES | nullable  # no type: any value (structural only with preserve-unknown)
    if kind == "number":
        return frozenset({"number", "integer"} | nullable)
    return frozenset({kind} | nullable)


def is_open(node: Mapping[str, Any]) -> bool:
    """Whether a node keeps whatever is written below it: preserve-unknown with no schema for its members."""
    return bool(node.get(PRESERVE)) and not node.get("properties") and not node.get("additionalProperties")


def compare(
    reference: Mapping[str, Any], ours: Mapping[str, Any], path: str = "", result: Compat | None = None
) -> Compat:
    """Check that ``ours`` accepts, and keeps, every value ``reference`` accepts, walking every reference path."""
    result = result if result is not None else Compat()
    result.walked.append(path)

    missing_types = accepted_types(reference) - accepted_types(ours)
    if missing_types:
        result.problem(
            path,
            f"the reference accepts {sorted(accepted_types(reference))}, ours only {sorted(accepted_types(ours))}"
            + (" (needs x-kubernetes-int-or-string)" if reference.get(INT_OR_STRING) else ""),
        )
    if "enum" in ours:
        if "enum" not in reference:
            result.problem(path, f"ours allows only {ours['enum']}, the reference any value")
        else:
            lost = [v for v in reference["enum"] if v not in ours["enum"]]
            if lost:
                result.problem(path, f"enum values the reference accepts and ours rejects: {lost}")
    for keyword in RESTRICTING:
        if keyword in ours and ours[keyword] != reference.get(keyword):
            result.problem(path, f"ours adds {keyword}={ours[keyword]!r} (reference: {reference.get(keyword)!r})")
    extra_required = sorted(set(ours.get("required") or ()) - set(reference.get("required") or ()))
    if extra_required:
        result.problem(path, f"ours requires {extra_required}, the reference does not")
    if reference.get(PRESERVE) and not ours.get(PRESERVE):
        result.problem(
            path, "the reference keeps unknown fields here (x-kubernetes-preserve-unknown-fields); ours prunes them"
        )

    if is_open(ours) and accepted_types(reference) <= accepted_types(ours):
        # Everything below is kept as written; walk it only to account for every path.
        for _, child_path, child in children(reference, path):
            _walk_open(child, child_path, path, result)
        return result

    for relation, child_path, child in children(reference, path):
        name = child_path.rsplit(".", 1)[-1]
        target: Mapping[str, Any] | None = None
        if relation == "property":
            target = (ours.get("properties") or {}).get(name)
            if target is None and isinstance(ours.get("additionalProperties"), Mapping):
                target = ours["additionalProperties"]
        elif relation == "map":
            target = ours.get("additionalProperties") if isinstance(ours.get("additionalProperties"), Mapping) else None
        else:
            target = ours.get("items") if isinstance(ours.get("items"), Mapping) else None
        if target is not None:
            compare(child, target, child_path, result)
        elif ours.get(PRESERVE):
            _walk_open(child, child_path, path, result)
        else:
            what = {"property": "field", "map": "map value", "items": "array item"}[relation]
            result.problem(child_path, f"{what} accepted by the reference has no schema in ours (pruned on write)")
            for sub in all_paths(child, child_path):
                result.walked.append(sub)
    return result


def _walk_open(node: Mapping[str, Any], path: str, open_at: str, result: Compat) -> None:
    for sub in all_paths(node, path):
        result.walked.append(sub)
        result.open_under[open_at] = result.open_under.get(open_at, 0) + 1


def sample(node: Mapping[str, Any], variant: int) -> Any:
    """A value for ``node`` that the reference schema accepts, with every property, map and array filled in;
    ``variant`` 0 and 1 pick the first/last enum value and the integer/string side of int-or-string."""
    if node.get(INT_OR_STRING):
        return [1, "1"][variant]
    if "enum" in node:
        return node["enum"][-variant]
    kind = node.get("type")
    if kind == "object" and node.get("properties"):
        return {name: sample(sub, variant) for name, sub in node["properties"].items()}
    if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        return {"key": sample(node["additionalProperties"], variant)}
    if kind == "array":
        return [sample(node["items"], variant)]
    scalars: dict[str, Any] = {"string": "s", "integer": 3, "number": [1.5, 2][variant], "boolean": bool(variant)}
    return scalars.get(str(kind), {"open": {"nested": [variant]}})  # type-less: preserve-unknown


# ------------------------------------------------------------------------------------------------ structural rules

# JSONSchemaProps fields of apiextensions.k8s.io/v1 (an unknown key is dropped or, with strict field
# validation, rejected).
SCHEMA_KEYS = frozenset(
    {
        "$schema",
        "$ref",
        "additionalItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "default",
        "definitions",
        "dependencies",
        "description",
        "enum",
        "example",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "externalDocs",
        "format",
        "id",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "nullable",
        "oneOf",
        "pattern",
        "patternProperties",
        "properties",
        "required",
        "title",
        "type",
        "uniqueItems",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations",
    }
)
UNSUPPORTED_KEYS = ("$ref", "id", "additionalItems", "patternProperties", "definitions", "dependencies")
ROOT_KEYS_WITH_STATUS = frozenset(
    {"description", "type", "title", "required", "properties", "x-kubernetes-preserve-unknown-fields"}
)
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def structural_problems(crd: Mapping[str, Any]) -> list[str]:
    """Every reason a kube-apiserver would reject ``crd`` (an apiextensions.k8s.io/v1 CRD), as far as checked."""
    problems: list[str] = []
    say = problems.append
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1" or crd.get("kind") != "CustomResourceDefinition":
        say("not an apiextensions.k8s.io/v1 CustomResourceDefinition")
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    group = spec.get("group", "")
    if crd.get("metadata", {}).get("name") != f"{names.get('plural')}.{group}":
        say(f"metadata.name must be <plural>.<group> = {names.get('plural')}.{group}")
    for key in ("plural", "kind"):  # singular and listKind are defaulted by the apiserver
        if not names.get(key):
            say(f"spec.names.{key} is empty")
    if (
        names.get("plural", "") != names.get("plural", "").lower()
        or names.get("singular", "") != names.get("singular", "").lower()
    ):
        say("spec.names.plural and singular must be lower case")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        say(f"spec.scope {spec.get('scope')!r} is not Namespaced or Cluster")
    versions = spec.get("versions") or []
    if sum(bool(v.get("storage")) for v in versions) != 1:
        say("exactly one version must be the storage version")
    for v in versions:
        where = f"spec.versions[{v.get('name')}]"
        subresources = v.get("subresources") or {}
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, Mapping):
            say(f"{where}: no openAPIV3Schema")
            continue
        if "status" in subresources:
            bad = set(schema) - ROOT_KEYS_WITH_STATUS
            if bad:
                say(f"{where}: with the status subresource the root schema may not have {sorted(bad)}")
        if schema.get("nullable"):
            say(f"{where}: nullable cannot be true at the root")
        problems.extend(f"{where}.schema.{p}" for p in schema_problems(schema))
        problems.extend(f"{where}: {p}" for p in _subresource_problems(subresources, schema))
        for column in v.get("additionalPrinterColumns") or []:
            if column.get("type") not in ("integer", "number", "string", "boolean", "date"):
                say(f"{where}: printer column {column.get('name')!r} has type {column.get('type')!r}")
            if not str(column.get("jsonPath", "")).startswith("."):
                say(f"{where}: printer column {column.get('name')!r} jsonPath must start with '.'")
            if not column.get("name"):
                say(f"{where}: printer column without a name")
    return problems


def schema_problems(schema: Mapping[str, Any], path: str = "", level: str = "root") -> list[str]:
    """The structural-schema violations in ``schema`` (``level``: root, field or item)."""
    problems: list[str] = []
    where = path or "<root>"

    def say(message: str) -> None:
        problems.append(f"{where}: {message}")

    unknown = set(schema) - SCHEMA_KEYS
    if unknown:
        say(f"keys that are not JSONSchemaProps fields: {sorted(unknown)}")
    for key in UNSUPPORTED_KEYS:
        if key in schema:
            say(f"{key} is not supported")
    kind = schema.get("type")
    if kind is not None and kind not in ALL_TYPES:
        say(f"type {kind!r} is not an OpenAPI v3 type (use nullable instead of null)")
    if not kind and not schema.get(INT_OR_STRING) and not schema.get(PRESERVE):
        say(f"type must not be empty ({level} level)")
    if level == "root" and kind != "object":
        say("the root must be of type object")
    if PRESERVE in schema and schema[PRESERVE] is not True:
        say("x-kubernetes-preserve-unknown-fields must be true or absent")
    if schema.get(INT_OR_STRING):
        if kind:
            say("x-kubernetes-int-or-string with a type")
        if schema.get(PRESERVE):
            say("x-kubernetes-preserve-unknown-fields must be false with x-kubernetes-int-or-string")
    if schema.get("uniqueItems"):
        say("uniqueItems cannot be true")
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if not isinstance(extra, Mapping):
            say("additionalProperties must be a schema (false and true are not structural)")
        if schema.get("properties"):
            say("additionalProperties and properties are mutually exclusive")
        if level == "root":
            say("additionalProperties must not be used at the root")
    if kind == "array" and not isinstance(schema.get("items"), Mapping):
        say("an array needs a single items schema")
    if "items" in schema and not isinstance(schema["items"], Mapping):
        say("items must be a schema object, not an array")
    if "default" in schema and schema["default"] is None and not schema.get("nullable"):
        say("a null default on a non-nullable field")
    for junction in ("anyOf", "allOf", "oneOf", "not"):
        if junction not in schema:
            continue
        if junction == "anyOf" and schema.get(INT_OR_STRING) and schema[junction] == INT_OR_STRING_ANY_OF:
            continue
        branches = schema[junction] if isinstance(schema[junction], list) else [schema[junction]]
        for branch in branches:
            for key in ("type", "additionalProperties", "default", "title", "description", "nullable", PRESERVE):
                if key in branch:
                    say(f"{junction} branch with {key!r} is not structural")
    properties = schema.get("properties") or {}
    if level == "root" and "metadata" in properties:
        # Below the root (and outside x-kubernetes-embedded-resource, which flinkops does not emit) a field
        # named metadata is an ordinary field.
        meta = properties["metadata"]
        narrowed = set(meta.get("properties") or {}) - {"name", "generateName"}
        if meta.get("type") != "object" or narrowed or set(meta) - {"type", "properties"}:
            say("metadata at the root may only be {type: object} and restrict name/generateName")
    if level == "root":
        for key in ("apiVersion", "kind"):
            if key in properties and properties[key].get("type") != "string":
                say(f"{key} at the root must be of type string")
    for name, sub in properties.items():
        problems.extend(schema_problems(sub, f"{path}.{name}" if path else name, "field"))
    if isinstance(schema.get("additionalProperties"), Mapping):
        problems.extend(schema_problems(schema["additionalProperties"], f"{path}{{}}", "field"))
    if isinstance(schema.get("items"), Mapping):
        problems.extend(schema_problems(schema["items"], f"{path}[]", "item"))
    return problems


def node_at(schema: Mapping[str, Any], json_path: str) -> Mapping[str, Any] | None:
    """The schema node a simple ``.a.b.c`` JSON path points to, or ``None``."""
    node: Mapping[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        if node is None:
            return None
        node = (node.get("properties") or {}).get(part)
    return node


def _subresource_problems(subresources: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    scale = subresources.get("scale")
    if scale is None:
        return problems
    expected = {
        "specReplicasPath": ((".spec.",), {"integer"}),
        "statusReplicasPath": ((".status.",), {"integer"}),
        "labelSelectorPath": ((".spec.", ".status."), {"string"}),
    }
    for key, (prefixes, types) in expected.items():
        value = scale.get(key)
        if value is None:
            if key != "labelSelectorPath":
                problems.append(f"scale.{key} is required")
            continue
        if not value.startswith(prefixes):
            problems.append(f"scale.{key} {value!r} must be a JSON path under {' or '.join(prefixes)}")
        node = node_at(schema, value)
        if node is None or node.get("type") not in types:
            problems.append(f"scale.{key} {value!r} must point at a field of type {sorted(types)} in the schema")
    return problems


# ------------------------------------------------------------------------------------------------ JSON schema form


def to_json_schema(node: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """A JSON schema (draft 2020-12) that accepts what the apiserver stores unchanged under ``node``.

    ``strict``: an object with ``properties`` and no preserve-unknown gets ``additionalProperties: false``, so a
    field the apiserver would prune (silently, or as an error under kubectl's strict field validation) fails
    validation instead of vanishing.
    """
    out: dict[str, Any] = {}
    for key in ("enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"):
        if key in node:
            out[key] = node[key]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if node.get(key) is True:
            out[key] = out.pop(key.replace("exclusiveM", "m"))
    if node.get(INT_OR_STRING):
        out["type"] = ["integer", "string"]
    elif "type" in node:
        out["type"] = [node["type"], "null"] if node.get("nullable") else node["type"]
    properties = node.get("properties")
    if properties:
        out["properties"] = {name: to_json_schema(sub, strict=strict) for name, sub in properties.items()}
        if strict and not node.get(PRESERVE):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"], strict=strict)
    if isinstance(node.get("items"), Mapping):
        out["items"] = to_json_schema(node["items"], strict=strict)
    if node.get("required"):
        out["required"] = list(node["required"])
    return out


def crd_json_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`to_json_schema` of a CRD's schema, with the fields the apiserver adds at the root of every object
    (``apiVersion``, ``kind``, ``metadata``) when the CRD does not spell them out."""
    schema = to_json_schema(root_schema(crd))
    implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    schema["properties"] = {**implicit, **schema.get("properties", {})}
    return schema
