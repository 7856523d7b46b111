"""``flinkops render-job``: one job's FlinkDeployment from the flink-job library chart's values (with Helm), so
``flinkops render-job -f values.yaml | flinkops apply -f -`` runs on this machine what ``helm install`` would run
on Kubernetes. The rendering itself is ``flinkops.dev.jobchart``.

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flinkops.cli.app import NamespaceOpt, app
from flinkops.cli.output import main_guard
from flinkops.errors import InvalidInput, Problem

__all__: list[str] = []


@app.command("render-job")
@main_guard
def render_job(
    values: Annotated[
        list[Path], typer.Option("--values", "-f", help="A job's values file (repeatable; later ones win).")
    ],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override one value, as helm's --set key=value (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml (default) or json.")] = "yaml",
    name: Annotated[
        str | None, typer.Option("--name", help="Helm release name (default: the first values file's name).")
    ] = None,
    namespace: NamespaceOpt = "default",
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart", help="A chart that includes flink-job (default: a checkout's deploy/helm/flink-job-example)."
        ),
    ] = None,
    every_object: Annotated[
        bool, typer.Option("--all", help="Print every object of the release (ServiceAccount, RoleBinding) too.")
    ] = False,
) -> None:
    """Render a job from the flink-job Helm library chart's values: its FlinkDeployment, ready for apply -f -."""
    from flinkops.dev.jobchart import render_job as render

    if output not in ("yaml", "json"):
        raise InvalidInput([Problem("--output", f"{output!r} is not an output format", "use yaml or json")])
    objects = render(values, sets or [], release=name, namespace=namespace, chart=chart, every_object=every_object)
    if output == "json":
        document = objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
        typer.echo(json.dumps(document, indent=2))
    else:
        import yaml

        typer.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
