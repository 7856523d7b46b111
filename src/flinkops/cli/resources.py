"""CLI commands on resources: apply, get, delete, suspend, resume, logs, lint, crds.

Each one parses its options, calls ``flinkops.service`` and prints the answer; the service decides, validates and
writes. Service modules are imported inside the commands, so a command loads only what it uses (``get`` must
answer fast: see ``tests/unit/test_cli_imports.py``).

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flinkops.cli import target
from flinkops.cli.app import FileOpt, NamespaceOpt, UsrlibOpt, app
from flinkops.cli.output import main_guard, out
from flinkops.errors import InvalidInput, Problem

__all__: list[str] = []


# ------------------------------------------------------------------------------------------------ apply


@app.command()
@main_guard
def apply(
    filename: FileOpt,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every resource is STABLE (or fails).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits before giving up.")] = 300.0,
    start_controller: Annotated[
        bool, typer.Option("--start-controller/--no-start-controller", help="Start the daemon if needed.")
    ] = True,
    usrlib: UsrlibOpt = None,
) -> None:
    """Create or update resources from YAML. Invalid input changes nothing (exit 2)."""
    from flinkops.service.applying import apply as apply_resources
    from flinkops.service.inputs import read_files
    from flinkops.service.waiting import wait_settled

    where = target.current()
    applied = apply_resources(where, read_files(where, filename, usrlib=usrlib), start_controller=False)
    for result in applied:
        out.print(f"{result.key.kind.lower()}/{result.key.name} {result.outcome}")
    if start_controller:
        where.ensure_controller()
    if wait:
        with out.status("waiting…") as spinner:
            for settled in wait_settled(where, [a.resource for a in applied], timeout, spinner.update):
                job = f" (job {settled.job_state})" if settled.job_state else ""
                out.print(f"{settled.key.kind.lower()}/{settled.key.name}: {settled.lifecycle}{job}")


# ------------------------------------------------------------------------------------------------ get


@app.command()
@main_guard
def get(
    kind_or_name: Annotated[str | None, typer.Argument(help="A kind (flinkdeployment, sessionjob) or a name.")] = None,
    name: Annotated[str | None, typer.Argument(help="Name, when a kind was given first.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table (default), wide, json or yaml.")] = "table",
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
) -> None:
    """Show resources and their status (CRD-shaped with -o json|yaml)."""
    from flinkops.cli.listing import show

    show(kind_or_name, name, output, namespace, all_namespaces)


# ------------------------------------------------------------------------------------------------ delete/suspend/resume


@app.command()
@main_guard
def delete(
    name: Annotated[str | None, typer.Argument(help="The resource to delete (or give -f FILE).")] = None,
    filename: Annotated[
        list[Path] | None,
        typer.Option("--filename", "-f", help="Delete every resource in this YAML file (session jobs first)."),
    ] = None,
    namespace: NamespaceOpt = "default",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it is gone.")] = True,
    timeout: float = 120.0,
) -> None:
    """Tear resources down: NAME, or every resource in -f FILE. Checkpoints and savepoints are kept."""
    from flinkops.service.changes import deletion_order, request_deletion, wait_deleted
    from flinkops.service.inputs import read_files
    from flinkops.service.resources import get as get_one

    if (name is None) == (not filename):
        problem = Problem("NAME", "give a resource name or -f FILE (not both)", "e.g. flinkops delete my-job")
        raise InvalidInput([problem])
    where = target.current()
    if filename:
        present, missing = deletion_order(where, read_files(where, filename))
        for key in missing:
            out.print(f"{key.kind.lower()}/{key.name} not found (already deleted)")
    else:
        present = [get_one(where, name or "", namespace).key]
    for key in present:
        label = f"{key.kind.lower()}/{key.name}"
        if request_deletion(where, key).gone:
            out.print(f"{label} deleted")
            continue
        out.print(f"{label} deletion requested")
        if wait:
            with out.status(f"deleting {key.name}…"):
                wait_deleted(where, key, timeout)
            out.print(f"{label} deleted (state in checkpoint/savepoint storage is kept)")


@app.command()
@main_guard
def suspend(name: str, namespace: NamespaceOpt = "default") -> None:
    """Stop the job and its cluster, keeping the spec (sets spec.job.state: suspended)."""
    from flinkops.service.changes import suspend as suspend_job

    change = suspend_job(target.current(), name, namespace)
    label = f"{change.key.kind.lower()}/{name}"
    out.print(f"{label} suspend requested" if change.changed else f"{label} already {change.state.value}")


@app.command()
@main_guard
def resume(name: str, namespace: NamespaceOpt = "default") -> None:
    """Start a suspended job again (sets spec.job.state: running)."""
    from flinkops.service.changes import resume as resume_job

    change = resume_job(target.current(), name, namespace)
    label = f"{change.key.kind.lower()}/{name}"
    out.print(f"{label} resume requested" if change.changed else f"{label} already {change.state.value}")


# ------------------------------------------------------------------------------------------------ logs/lint/crds


@app.command()
@main_guard
def logs(
    name: str,
    namespace: NamespaceOpt = "default",
    jobmanager: Annotated[bool, typer.Option("--jobmanager", help="Only JobManager logs.")] = False,
    taskmanager: Annotated[bool, typer.Option("--taskmanager", help="Only TaskManager logs.")] = False,
    tail: Annotated[int, typer.Option(help="Lines from the end of each file (0 = all).")] = 100,
) -> None:
    """Print the Flink logs of a deployment's processes."""
    from flinkops.service.description import log_files

    target.local_only("logs", f"kubectl logs -n {namespace} deployment/{name} (add -taskmanager for TaskManagers)")
    component = "jobmanager" if jobmanager else "taskmanager" if taskmanager else None
    for path in log_files(target.current(), name, namespace, component):
        if path.stat().st_size == 0:
            continue
        out.print(f"[bold]==> {path} <==[/bold]")
        lines = path.read_text(errors="replace").splitlines()
        sys.stdout.write("\n".join(lines[-tail:] if tail else lines) + "\n")


@app.command()
@main_guard
def lint(filename: FileOpt, usrlib: UsrlibOpt = None) -> None:
    """Check resources as `apply` would, then for the known Flink-on-Kubernetes pitfalls. Exit 2 when apply would
    reject the input, 1 when an error-severity rule fires."""
    from rich.markup import escape as _plain

    from flinkops.service.inputs import read_files, validate
    from flinkops.service.planning import lint as lint_resources

    where = target.current()
    resources = read_files(where, filename, usrlib=usrlib)
    invalid = validate(where, resources)
    for problem in invalid:
        about = f" {problem.source}" if problem.source else ""
        out.print(f"[red]ERROR[/red] invalid{about} {_plain(problem.path)}: {_plain(problem.message)}")
        if problem.hint:
            out.print(f"    fix: {_plain(problem.hint)}")
    errors = 0
    total = 0
    for report in lint_resources(resources):
        label = f"{report.key.kind} {report.key.namespace}/{report.key.name}"
        if not report.findings:
            if not invalid:
                out.print(f"[green]✓[/green] {label}: no findings")
            continue
        for f in report.findings:
            total += 1
            errors += f.severity == "error"
            color = "red" if f.severity == "error" else "yellow"
            out.print(f"[{color}]{f.severity.upper()}[/{color}] {f.rule_id} {label} {_plain(f.path)}: {f.message}")
            out.print(f"    why: {f.why}")
            out.print(f"    fix: {f.fix}")
    if invalid:
        out.print(f"{len(invalid)} problem(s) that apply would reject, {total} finding(s); nothing was changed")
        raise typer.Exit(2)
    if total:
        out.print(f"{total} finding(s), {errors} error(s)")
    if errors:
        raise typer.Exit(1)


@app.command()
@main_guard
def crds(
    output: Annotated[
        str, typer.Option("--output", "-o", help="yaml (default; one document per CRD) or json (a List).")
    ] = "yaml",
) -> None:
    """Print the FlinkDeployment and FlinkSessionJob CustomResourceDefinitions (flink.apache.org/v1beta1).

    Install or update them on a cluster (needs permission to create CRDs, e.g. cluster-admin):

      flinkops crds | kubectl apply -f -

    Then `kubectl get crd flinkdeployments.flink.apache.org flinksessionjobs.flink.apache.org` shows them,
    `kubectl explain flinkdeployment.spec` documents the fields, `kubectl get flinkdep` / `kubectl get sessionjob`
    list resources with their Job Status and Lifecycle State, and `kubectl scale flinkdep NAME --replicas=N` sets
    spec.taskManager.replicas.

    They accept every resource the Apache Flink Kubernetes Operator's CRDs accept, so existing FlinkDeployment
    and FlinkSessionJob objects stay valid when these replace that operator's CRDs. Replace rather than apply over
    them (apply merges into the old schema instead of swapping it):

      flinkops crds | kubectl replace -f -

    This command only prints; it contacts no cluster.
    """
    import yaml

    from flinkops.api.crds import custom_resource_definitions

    if output not in ("yaml", "json"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use yaml or json")])
    definitions = custom_resource_definitions()
    if output == "json":
        body = {"apiVersion": "v1", "kind": "List", "items": definitions}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(definitions, sort_keys=False))
