"""flinkops' CRDs accept everything the Apache Flink Kubernetes Operator's CRDs accept, so they can replace them
under existing objects and users' YAML keeps working.

The reference CRDs are read from ``$FLINKOPS_REFERENCE_CRDS`` or ``../shared/reference/crds`` (never copied into
the repository); without them these tests skip, naming the path. The walk (``support.crdcheck.compare``) visits
every schema path of the reference (podTemplate's full Pod schema included) and collects every mismatch with its
path before failing: a narrower type, a missing int-or-string, fewer enum values, an added restriction or
``required``, a field or map the reference keeps and ours would prune.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flinkops.api.crds import custom_resource_definitions
from flinkops.api.loader import load_object
from flinkops.errors import InvalidInput
from support.crdcheck import (
    INT_OR_STRING,
    PRESERVE,
    REFERENCE_ENV,
    REFERENCE_FILES,
    all_paths,
    compare,
    only_version,
    reference_crd,
    reference_dir,
    root_schema,
    sample,
    structural_problems,
)

OURS = {crd["metadata"]["name"]: crd for crd in custom_resource_definitions()}
NAMES = sorted(REFERENCE_FILES)


def test_both_reference_kinds_are_generated() -> None:
    assert sorted(OURS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_schema_path_is_accepted_by_ours(name: str) -> None:
    reference = root_schema(reference_crd(name))
    result = compare(reference, root_schema(OURS[name]))

    # The walk accounted for every path of the reference exactly once, open subtrees included.
    assert Counter(result.walked) == Counter(all_paths(reference))
    assert not result.problems, f"{len(result.problems)} path(s) the reference accepts and ours does not:\n" + (
        "\n".join(result.problems)
    )


def test_the_walk_covers_the_whole_pod_template() -> None:
    # Guards against a walk that silently stops early: the reference FlinkDeployment schema has thousands of
    # paths, almost all of them in the three pod templates that ours keeps as open objects.
    reference = root_schema(reference_crd("flinkdeployments.flink.apache.org"))
    result = compare(reference, root_schema(OURS["flinkdeployments.flink.apache.org"]))

    assert len(result.walked) > 3000
    assert result.open_under["spec.podTemplate"] > 1000
    assert any(p.startswith("spec.taskManager.podTemplate.spec.containers[].resources.limits{}") for p in result.walked)


@pytest.mark.parametrize("name", NAMES)
def test_reference_names_scope_and_version(name: str) -> None:
    reference, ours = reference_crd(name), OURS[name]
    ref_version, our_version = only_version(reference), only_version(ours)

    assert ours["spec"]["group"] == reference["spec"]["group"]
    assert ours["spec"]["scope"] == reference["spec"]["scope"]
    for key in ("kind", "plural", "singular"):
        assert ours["spec"]["names"][key] == reference["spec"]["names"][key], key
    assert set(reference["spec"]["names"].get("shortNames", [])) <= set(ours["spec"]["names"]["shortNames"])
    assert (our_version["name"], our_version["served"], our_version["storage"]) == (
        ref_version["name"],
        ref_version["served"],
        ref_version["storage"],
    )


@pytest.mark.parametrize("name", NAMES)
def test_reference_printer_columns_are_present(name: str) -> None:
    def columns(crd: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {(c["name"], c["jsonPath"], c["type"]) for c in only_version(crd).get("additionalPrinterColumns", [])}

    assert columns(reference_crd(name)) <= columns(OURS[name])


@pytest.mark.parametrize("name", NAMES)
def test_reference_subresources_are_present(name: str) -> None:
    reference = only_version(reference_crd(name))["subresources"]
    ours = only_version(OURS[name])["subresources"]

    assert set(reference) <= set(ours)
    assert ours.get("scale") == reference.get("scale")


@pytest.mark.parametrize("name", NAMES)
def test_reference_status_fields_are_present(name: str) -> None:
    # What the reference operator (and tools built for it: dashboards, kubectl jsonpath, Argo CD health checks)
    # reads from status must exist in ours under the same names.
    reference = root_schema(reference_crd(name))["properties"]["status"]
    ours = root_schema(OURS[name])["properties"]["status"]

    missing = sorted(set(all_paths(reference, "status")) - set(all_paths(ours, "status")))
    assert not missing, f"status fields of the reference missing in ours: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_the_structural_checker_accepts_the_reference_crds(name: str) -> None:
    # The reference CRDs are installed on real clusters, so a checker that flags them is wrong, not them.
    assert structural_problems(reference_crd(name)) == []


# Where the models deliberately check more than the reference CRD (the CRD itself widens back, see
# ``flinkops.api.crds._WIDEN_ENUM_*``): the sample documents below put an arbitrary string there.
MODEL_STRICTER = {
    "FlinkDeployment": {"spec.imagePullPolicy", "status.conditions[0].status"},
    "FlinkSessionJob": set(),
}


@pytest.mark.parametrize("variant", [0, 1])
@pytest.mark.parametrize("name", NAMES)
def test_the_models_read_every_field_the_reference_accepts(name: str, variant: int) -> None:
    # The CRD is only half of compatibility: flinkops parses what the apiserver stores with its models. A document
    # that fills every reference path (every pod-template field included) must load, except where the models
    # check a value the reference leaves free (MODEL_STRICTER).
    crd = reference_crd(name)
    kind = crd["spec"]["names"]["kind"]
    document = sample(root_schema(crd), variant)
    document.update(apiVersion="flink.apache.org/v1beta1", kind=kind, metadata={"name": "sample"})

    try:
        load_object(document)
        problems: set[str] = set()
    except InvalidInput as exc:
        problems = {p.path for p in exc.problems}

    assert problems == MODEL_STRICTER[kind]


def test_missing_reference_crds_skip_with_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv(REFERENCE_ENV, str(tmp_path / "nowhere"))

    assert reference_dir() == tmp_path / "nowhere"
    with pytest.raises(pytest.skip.Exception, match=str(tmp_path / "nowhere")):
        reference_crd(NAMES[0])


# ------------------------------------------------------------------------------------------------ the walk itself


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}


@pytest.mark.parametrize(
    ("reference", "ours", "complaint"),
    [
        (_object(a=STRING), _object(), "a: field accepted by the reference has no schema in ours"),
        (_object(a=INTEGER), _object(a=STRING), "a: the reference accepts ['integer'], ours only ['string']"),
        (
            _object(q={"anyOf": [INTEGER, STRING], INT_OR_STRING: True}),
            _object(q=INTEGER),
            "needs x-kubernetes-int-or-string",
        ),
        (_object(e={**STRING, "enum": ["a", "b"]}), _object(e={**STRING, "enum": ["a"]}), "ours rejects: ['b']"),
        (_object(e=STRING), _object(e={**STRING, "enum": ["a"]}), "the reference any value"),
        (_object(a=STRING), {**_object(a=STRING), "required": ["a"]}, "ours requires ['a']"),
        (_object(a=STRING), _object(a={**STRING, "pattern": "^x$"}), "ours adds pattern"),
        (
            _object(m={"type": "object", "additionalProperties": STRING}),
            _object(m=_object(k=STRING)),
            "m{}: map value accepted by the reference has no schema in ours",
        ),
        (_object(c={PRESERVE: True}), _object(c={"type": "object", PRESERVE: True}), "ours only ['object']"),
        (_object(c={PRESERVE: True}), _object(c=_object()), "ours prunes them"),
        (
            _object(list={"type": "array", "items": _object(x=INTEGER)}),
            _object(list={"type": "array", "items": _object(x=STRING)}),
            "list[].x: the reference accepts ['integer']",
        ),
    ],
)
def test_the_walk_reports_what_ours_rejects(reference: dict[str, Any], ours: dict[str, Any], complaint: str) -> None:
    problems = compare(reference, ours).problems

    assert any(complaint in p for p in problems), problems


def test_the_walk_accepts_wider_schemas_and_reports_every_mismatch_at_once() -> None:
    reference = _object(
        n=INTEGER,
        q={"anyOf": [INTEGER, STRING], INT_OR_STRING: True},
        e={**STRING, "enum": ["a"]},
        pod=_object(spec=_object(containers={"type": "array", "items": _object(name=STRING)})),
        bad1=INTEGER,
        bad2=INTEGER,
    )
    ours = _object(
        n={"type": "number"},
        q={INT_OR_STRING: True},
        e={**STRING, "enum": ["a", "b"]},
        pod={"type": "object", PRESERVE: True},
        bad1=STRING,
        bad2={"type": "boolean"},
    )

    result = compare(reference, ours)

    assert [p.split(":")[0] for p in result.problems] == ["bad1", "bad2"]
    assert result.open_under == {"pod": 4}
