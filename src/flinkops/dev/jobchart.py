"""Rendering one job from the flink-job library chart's values (``flinkops render-job``), with the real ``helm``.

The chart is ``deploy/helm/flink-job-example`` of a flinkops checkout (or any application chart that includes the
library, given as ``chart``); Helm renders it exactly as ``helm install`` would, values.schema.json checks
included, so a job's values mean the same on Kubernetes and, piped into ``flinkops apply -f -``, on the local
runtime. ``helm`` is the one on PATH, else the one :func:`flinkops.dev.helm.helm_binary` builds (once) from the Go
module proxy: re-implementing Helm's templates in Python would drift from what a cluster gets.

Bad values raise ``InvalidInput`` with one problem per schema error, each at its field path (``job.parallelism``);
a template's own ``fail`` or a missing file is one problem at ``values``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from flinkops.dev.helm import helm_binary, run_helm
from flinkops.errors import InvalidInput, Problem

__all__ = ["EXAMPLE_CHART", "render_job"]

EXAMPLE_CHART = Path(__file__).resolve().parents[3] / "deploy" / "helm" / "flink-job-example"
# What render-job prints unless asked for every object: what `flinkops apply` takes.
FLINK_KINDS = ("FlinkDeployment", "FlinkSessionJob")

# Helm's schema error lines: "- at '/job/parallelism': got string, want integer".
_SCHEMA_ERROR = re.compile(r"^- at '(?P<pointer>[^']*)': (?P<message>.+)$")
_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")


def _helm() -> str | Path:
    return shutil.which("helm") or helm_binary()


def _field(pointer: str) -> str:
    """A JSON pointer ('/job/args/0') as the field path flinkops prints ('job.args[0]'); '' is the whole file."""
    path = ""
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "values"


def _problems(stderr: str) -> list[Problem]:
    problems = []
    for line in stderr.splitlines():
        found = _SCHEMA_ERROR.match(line.strip())
        if found:
            problems.append(Problem(_field(found["pointer"]), found["message"], "see the chart's values.schema.json"))
    if problems:
        return problems
    errors = [line.removeprefix("Error: ") for line in stderr.splitlines() if not line.startswith("level=")]
    return [Problem("values", " ".join(errors).strip() or "helm template failed", "fix the values or the chart")]


def render_job(
    values: Sequence[Path],
    sets: Sequence[str] = (),
    *,
    release: str | None = None,
    namespace: str = "default",
    chart: Path | None = None,
    every_object: bool = False,
) -> list[dict[str, Any]]:
    """``helm template`` of the job chart with these values files and ``--set`` overrides, parsed: the
    FlinkDeployments (and FlinkSessionJobs), or with ``every_object`` everything the release installs."""
    problems = [Problem("-f", f"{path}: no such file", "give a values file") for path in values if not path.is_file()]
    if chart is None and not (EXAMPLE_CHART / "Chart.yaml").is_file():
        # An installed flinkops (not a checkout) has no charts: they are Helm's to distribute, not pip's.
        problems.append(
            Problem(
                "--chart",
                "no chart given, and the example job chart is not here (it is in the flinkops repository, "
                "deploy/helm/flink-job-example)",
                "give --chart DIR: your job chart, or a copy of flink-job-example with flink-job in its charts/",
            )
        )
    elif not ((chart or EXAMPLE_CHART) / "Chart.yaml").is_file():
        problems.append(Problem("--chart", f"{chart}: not a Helm chart", "give a chart that includes flink-job"))
    chart = chart or EXAMPLE_CHART
    name = release or (values[0].stem if values else "flink-job")
    if not _RELEASE_NAME.match(name):
        problems.append(Problem("--name", f"{name!r} is not a release name", "lowercase letters, digits and '-'"))
    if problems:
        raise InvalidInput(problems)
    args = ["template", name, str(chart), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    done = run_helm(_helm(), args)
    if done.returncode != 0:
        raise InvalidInput(_problems(done.stderr))
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if isinstance(doc, dict)]
    return objects if every_object else [o for o in objects if o.get("kind") in FLINK_KINDS]
