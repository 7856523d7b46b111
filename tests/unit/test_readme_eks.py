"""The README's EKS section names only chart values that exist: every value in its table and every ``--set`` of its
``helm install`` is a key of deploy/helm/flinkops/values.yaml (a typo there would make users' installs fail on the
chart's strict values schema)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from support.dockerfile import REPO

SECTION = "### Running the operator on a real cluster (EKS)"


def _section() -> str:
    text = (REPO / "README.md").read_text()
    assert SECTION in text
    return text.split(SECTION, 1)[1].split("\n### ", 1)[0]


def _exists(values: dict[str, Any], path: str) -> bool:
    """``a.b.c`` is a key path of ``values``; a path that goes on into a free-form map (``annotations``, ``{}``)
    counts from there, and ``.*`` means any key under the path."""
    node: Any = values
    for part in re.split(r"(?<!\\)\.", path.removesuffix(".*")):
        if isinstance(node, dict) and node == {}:
            return True  # user-chosen keys, e.g. an annotation's name
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _named_values() -> list[str]:
    section = _section()
    named: list[str] = []
    for row in re.findall(r"^\| (`[^|]+) \|", section, re.MULTILINE):
        previous = ""
        for token in re.findall(r"`([^`]+)`", row):
            if token.startswith("."):
                token = previous.split(".", 1)[0] + token
            named.append(token)
            previous = token
    named += re.findall(r"--set(?:-string)? '?([\w.\\/-]+?)(?:=|\{)", section)
    return named


def test_every_value_the_eks_section_names_is_in_the_charts_values() -> None:
    values = yaml.safe_load((REPO / "deploy" / "helm" / "flinkops" / "values.yaml").read_text())
    named = _named_values()
    assert len(named) >= 15, named
    missing = [path for path in named if not _exists(values, path)]
    assert missing == []


def test_the_check_catches_a_value_that_does_not_exist() -> None:
    values = {"image": {"repository": "x"}, "serviceAccount": {"annotations": {}}}
    assert _exists(values, "image.repository") and _exists(values, "serviceAccount.annotations.eks\\.amazonaws\\.com/x")
    assert not _exists(values, "image.registry") and not _exists(values, "operator.image")
