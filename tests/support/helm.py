"""Render the operator's Helm chart (``deploy/helm/flinkops``) with the real ``helm`` binary, for tests.

The binary is built once from the Go module proxy (:func:`flinkops.dev.helm.helm_binary`; ``make test``'s
prefetch does it before any test). When a test has to build it, the progress goes to the real stderr past
pytest's capture, so minutes of ``go install`` do not look like a hang.

Helm's own cache, config and data directories point into a temporary directory per call, so tests neither read
nor change the user's Helm repositories or plugins.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from flinkops.dev.helm import helm_binary, run_helm

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "flinkops"

Manifest = dict[str, Any]

# What the chart must grant, as (apiGroup, resource) -> verbs, nothing more and nothing less: the operator in each
# watched namespace (or cluster-wide), and Flink's job ServiceAccount in each job namespace. test_helm_chart.py
# compares the rendered Roles with these, the live test asks the apiserver's authorizer about them.
OPERATOR_RULES: dict[tuple[str, str], set[str]] = {
    ("flink.apache.org", "flinkdeployments"): {"get", "list", "watch", "update", "patch"},
    ("flink.apache.org", "flinksessionjobs"): {"get", "list", "watch", "update", "patch"},
    ("flink.apache.org", "flinkdeployments/status"): {"get", "update", "patch"},
    ("flink.apache.org", "flinksessionjobs/status"): {"get", "update", "patch"},
    ("flink.apache.org", "flinkdeployments/finalizers"): {"update"},
    ("flink.apache.org", "flinksessionjobs/finalizers"): {"update"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch", "patch"},  # patch: lifting a JobManager's start gate
    ("networking.k8s.io", "ingresses"): {"get", "create", "patch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
JOB_RULES: dict[tuple[str, str], set[str]] = {
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch", "create", "delete"},
    ("apps", "deployments"): {"get"},
    ("apps", "deployments/finalizers"): {"update"},
}


def _progress(message: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[helm] {message}\n")
    stream.flush()


class HelmFailed(Exception):
    """``helm`` exited non-zero; ``stderr`` says why (a ``fail`` in a template, a values.schema.json error)."""

    def __init__(self, argv: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} failed:\n{stderr}")
        self.stderr = stderr


def helm(*args: str, values: Mapping[str, Any] | None = None) -> str:
    """Run ``helm ARGS [-f values.yaml]`` in an isolated Helm home; its stdout, or HelmFailed."""
    binary = helm_binary(progress=_progress)
    done = run_helm(binary, args, values_yaml=None if values is None else yaml.safe_dump(dict(values)))
    if done.returncode != 0:
        raise HelmFailed(done.args, done.stderr)
    return done.stdout


def render_documents(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "flinkops",
    namespace: str = "flinkops-system",
    include_crds: bool = False,
) -> list[tuple[str, Manifest]]:
    """``helm template`` of the chart: each rendered object's YAML text as Helm wrote it, with its parsed form,
    in Helm's install order. The text matters where parsing would hide a mistake (PyYAML keeps the last of two
    equal keys without a word; an apiserver with strict field validation refuses them)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    return documents_of(helm(*args, values=values or {}))


def documents_of(text: str) -> list[tuple[str, Manifest]]:
    """Helm's multi-document output split at its ``---`` lines: each non-empty document's text with its parsed form."""
    documents = []
    for chunk in re.split(r"^---[ \t]*$", text, flags=re.MULTILINE):
        parsed = yaml.safe_load(chunk)
        if parsed:
            documents.append((chunk, parsed))
    return documents


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "flinkops",
    namespace: str = "flinkops-system",
    include_crds: bool = False,
) -> list[Manifest]:
    """``helm template`` of the chart: every rendered object, parsed, in Helm's install order."""
    documents = render_documents(values, release=release, namespace=namespace, include_crds=include_crds)
    return [parsed for _, parsed in documents]
