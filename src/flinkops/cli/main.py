"""The ``flinkops`` command line (kubectl-like). Thin: parse, call the store/controller, print.

Exit codes: 0 success, 1 the operation failed, 2 invalid input (nothing was changed). ``-o json`` prints the
CRD-shaped object (``{"kind": "List", "items": [...]}`` for several), a stable interface for scripts.

Resources live in ``$FLINKOPS_HOME`` (default ``./.flinkops``). Commands that change resources start the
controller daemon on demand; ``flinkops controller run`` runs it in the foreground instead. With ``--context NAME``
(or ``FLINKOPS_TARGET=kubernetes``) the same commands talk to a Kubernetes API server, where the operator
(``flinkops operator run``, installed by the Helm chart) reconciles.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from flinkops.api.crds import custom_resource_definitions
from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir
from flinkops.api.loader import dump_resource, load_documents
from flinkops.api.models import FlinkDeployment, FlinkSessionJob, JobState, LifecycleState
from flinkops.api.validation import validate_against, validate_resource, validate_update
from flinkops.cli import target
from flinkops.cli.dev import dev_app
from flinkops.cli.operator import operator_app
from flinkops.cli.output import err, main_guard, out
from flinkops.clock import SystemClock
from flinkops.errors import FlinkopsError, InvalidInput, NotFound, Problem, TemporaryError
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.ports import ClusterKey, ResourceKey, ResourceStore, SnapshotStore
from flinkops.runtimes.local.runtime import LocalRuntime
from flinkops.settings import SOURCE_DIR_ANNOTATION, default_home, default_state_uri, store_path

__all__ = ["app", "run"]

Resource = FlinkDeployment | FlinkSessionJob

app = typer.Typer(
    name="flinkops",
    help=(
        "Run stateful Apache Flink jobs from FlinkDeployment / FlinkSessionJob YAML.\n\n"
        "Resources and their status live in $FLINKOPS_HOME (default ./.flinkops); each FlinkDeployment "
        "becomes its own local Flink cluster. Typical session:\n\n"
        "  flinkops apply -f job.yaml --wait\n\n  flinkops get\n\n  flinkops describe NAME\n\n"
        "  flinkops delete NAME\n\nExit codes: 0 success, 1 failed, 2 invalid input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
controller_app = typer.Typer(help="Run or manage the controller daemon that reconciles resources.")
app.add_typer(controller_app, name="controller")
app.add_typer(dev_app, name="dev")
app.add_typer(operator_app, name="operator")


@app.callback()
def _global_options(
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            help="Work on this kubeconfig context's API server instead of the local store (the operator "
            "reconciles there). FLINKOPS_TARGET=kubernetes does the same with the current context.",
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config).")
    ] = None,
) -> None:
    target.choose(context, kubeconfig)


_KIND_ALIASES = {
    "flinkdeployment": "FlinkDeployment",
    "flinkdeployments": "FlinkDeployment",
    "flinkdep": "FlinkDeployment",
    "fd": "FlinkDeployment",
    "flinksessionjob": "FlinkSessionJob",
    "flinksessionjobs": "FlinkSessionJob",
    "sessionjob": "FlinkSessionJob",
    "sessionjobs": "FlinkSessionJob",
}
_SETTLED = {
    LifecycleState.STABLE,
    LifecycleState.SUSPENDED,
    LifecycleState.FAILED,
    LifecycleState.ROLLED_BACK,
}

FileOpt = Annotated[
    list[Path],
    typer.Option("--filename", "-f", help="YAML file with one or more resources ('-' reads stdin)."),
]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the resource.")]


def _home() -> Path:
    return default_home()


def _store() -> ResourceStore:
    if target.kubernetes():
        return target.kube_store()
    from flinkops.stores.sqlite import SqliteStore

    return SqliteStore(store_path(_home()))


def _ensure_controller() -> None:
    """Start the local controller daemon if it is not running; on Kubernetes the operator is already there."""
    if not target.kubernetes():
        _daemon().start_daemon(_home())


def _daemon() -> Any:
    from flinkops.wiring import daemon

    return daemon


def _local() -> Any:
    from flinkops.wiring import local

    return local


def _read_files(files: list[Path]) -> list[Resource]:
    problems: list[Problem] = []
    resources: list[Resource] = []
    for path in files:
        if str(path) == "-":
            text, source, base = sys.stdin.read(), "<stdin>", Path.cwd()
        else:
            try:
                text = path.read_text()
            except OSError as exc:
                problems.append(Problem(path=str(path), message=f"cannot read file: {exc.strerror}"))
                continue
            source, base = str(path), path.resolve().parent
        try:
            loaded = load_documents(text, source)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        for resource in loaded:
            if target.kubernetes():
                resources.append(resource)  # a local directory means nothing to the operator in the cluster
                continue
            annotations = dict(resource.metadata.annotations or {})
            annotations.setdefault(SOURCE_DIR_ANNOTATION, str(base))
            meta = resource.metadata.model_copy(update={"annotations": annotations})
            resources.append(resource.model_copy(update={"metadata": meta}))
    if problems:
        raise InvalidInput(problems)
    if not resources:
        raise InvalidInput([Problem(path="-f", message="no resources found in the given file(s)")])
    return resources


def checked_input(resources: list[Resource], store: ResourceStore) -> dict[tuple[Any, str, str], Resource]:
    """Validate resources as `apply` would (each on its own, as an update of the stored one, against each
    other and the store, and the state they would start from); raise InvalidInput listing every problem.
    Returns the stored resources by (kind, namespace, name)."""
    existing = {(r.kind, r.metadata.namespace, r.metadata.name): r for r in store.list_resources()}
    problems: list[Problem] = []
    for resource in resources:
        problems.extend(validate_resource(resource, default_state_dirs=True))
        old = existing.get((resource.kind, resource.metadata.namespace, resource.metadata.name))
        if old is not None:
            problems.extend(validate_update(old, resource))
    problems.extend(validate_against(resources, existing, default_state_dirs=True))
    problems.extend(restore_path_problems(resources, existing))
    if problems:
        raise InvalidInput(problems)
    return existing


def snapshot_store(resource: Resource, config: Mapping[str, str] | None = None) -> SnapshotStore:
    """Checkpoint and savepoint storage as ``resource`` reaches it (local paths, or S3 with its endpoint);
    ``config`` is its rendered configuration when the caller has it already."""
    if config is None:
        if isinstance(resource, FlinkDeployment):
            config = rendered_config(resource)
        else:
            config = resource.spec.flink_configuration
    store: SnapshotStore = _local().snapshot_store(_home(), dict(config))
    return store


def restore_path_problems(
    resources: list[Resource], existing: Mapping[tuple[Any, str, str], Resource]
) -> list[Problem]:
    """A savepoint the spec would start from (a first deployment, or a savepoint redeploy) must exist now:
    finding out after the running job was stopped would be too late."""
    from flinkops.s3 import S3Problem
    from flinkops.snapshots.local import UnsupportedSnapshotStorage

    problems: list[Problem] = []
    for resource in resources:
        job = resource.spec.job
        path = (job.initial_savepoint_path or "").strip() if job is not None else ""
        if job is None or not path:
            continue
        old = existing.get((resource.kind, resource.metadata.namespace, resource.metadata.name))
        old_job = old.spec.job if old is not None else None
        redeploy = old_job is not None and job.savepoint_redeploy_nonce != old_job.savepoint_redeploy_nonce
        if old is not None and not redeploy:
            continue  # only read on a first deployment or a savepoint redeploy
        try:
            present = snapshot_store(resource).exists(path)
        except (UnsupportedSnapshotStorage, TemporaryError, S3Problem):
            continue  # cannot look there now; the controller checks again before it acts
        except InvalidInput:
            present = False
        if not present:
            problems.append(
                Problem(
                    path="spec.job.initialSavepointPath",
                    message=f"{path} is not a completed savepoint or checkpoint (no _metadata found there)",
                    hint="give the directory of a savepoint or checkpoint; `flinkops snapshots NAME` lists them",
                )
            )
    return problems


def rendered_config(resource: FlinkDeployment) -> dict[str, str]:
    """The Flink configuration the controller renders for ``resource`` (where its state lives, say)."""
    meta = resource.metadata
    inputs = RenderInputs(
        name=meta.name,
        namespace=meta.namespace,
        default_state_uri=default_state_uri(_home(), meta.namespace, meta.name),
        python_executable=sys.executable,
    )
    return render_flink_config(resource.spec, inputs)


def _resolve(store: ResourceStore, name: str, namespace: str, kind: str | None = None) -> Resource:
    kinds = [kind] if kind else ["FlinkDeployment", "FlinkSessionJob"]
    found: list[Resource] = [r for k in kinds if (r := store.get(ResourceKey(k, namespace, name))) is not None]
    if not found:
        raise NotFound(f"no FlinkDeployment or FlinkSessionJob named {name!r} in namespace {namespace!r}")
    if len(found) > 1:
        raise InvalidInput([Problem(path="NAME", message=f"{name!r} names both kinds", hint="give the kind first")])
    return found[0]


def _lifecycle(resource: Resource) -> str:
    if resource.metadata.deletion_timestamp:
        return LifecycleState.DELETING.value
    state = resource.status.lifecycle_state if resource.status else None
    return state.value if state else LifecycleState.CREATED.value


def _age(created: str | None) -> str:
    if not created:
        return "-"
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "-"
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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
) -> None:
    """Create or update resources from YAML. Invalid input changes nothing (exit 2)."""
    resources = _read_files(filename)
    store = _store()
    existing = checked_input(resources, store)
    applied: list[Resource] = []
    for resource in resources:
        before = existing.get((resource.kind, resource.metadata.namespace, resource.metadata.name))
        stored = store.apply(resource)
        applied.append(stored)
        verb = (
            "created"
            if before is None
            else ("configured" if stored.metadata.generation != before.metadata.generation else "unchanged")
        )
        out.print(f"{resource.kind.lower()}/{resource.metadata.name} {verb}")
    if start_controller:
        _ensure_controller()
    if wait:
        _wait_settled(store, applied, timeout)


def _wait_settled(store: ResourceStore, resources: list[Resource], timeout: float) -> None:
    keys = [(ResourceKey.of(r), r.metadata.generation or 0) for r in resources]
    deadline = time.monotonic() + timeout
    failed: list[str] = []
    with out.status("waiting…") as spinner:
        pending = list(keys)
        while pending:
            lines = []
            still = []
            for key, generation in pending:
                current = store.get(key)
                if current is None:
                    raise NotFound(f"{key} disappeared while waiting")
                status = current.status
                state = _lifecycle(current)
                job = status.job_status.state if status and status.job_status else None
                settled = (
                    status is not None
                    and (status.observed_generation or 0) >= generation
                    and status.lifecycle_state in _SETTLED
                )
                if settled:
                    out.print(f"{key.kind.lower()}/{key.name}: {state}" + (f" (job {job})" if job else ""))
                    if status is not None and status.lifecycle_state == LifecycleState.FAILED:
                        failed.append(f"{key.name}: {status.error or 'failed'}")
                    continue
                still.append((key, generation))
                lines.append(f"{key.name}: {state}" + (f", job {job}" if job else ""))
            pending = still
            if not pending:
                break
            if time.monotonic() > deadline:
                raise FlinkopsError(f"timed out after {timeout:.0f}s waiting for: {'; '.join(lines)}")
            spinner.update("waiting for " + "; ".join(lines))
            time.sleep(0.25)
    if failed:
        raise FlinkopsError("failed: " + "; ".join(f.splitlines()[0] for f in failed))


# ------------------------------------------------------------------------------------------------ get


def _row(resource: Resource, wide: bool) -> list[str]:
    status = resource.status
    job = (status.job_status.state if status else None) or "-"
    row = [resource.metadata.name, resource.kind, job, _lifecycle(resource)]
    if wide:
        jm = "-"
        rest = "-"
        if isinstance(resource, FlinkDeployment) and status is not None:
            jm = resource.status.job_manager_deployment_status.value if resource.status else "-"
            rest = resource.status.cluster_info.get("rest-url", "-") if resource.status else "-"
        job_id = (status.job_status.job_id if status else None) or "-"
        error = ((status.error or "").splitlines() or [""])[0][:60] if status else ""
        row += [jm, job_id, rest, _age(resource.metadata.creation_timestamp), error or "-"]
    else:
        row.append(_age(resource.metadata.creation_timestamp))
    return row


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
    if output not in ("table", "wide", "json", "yaml"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use table, wide, json or yaml")])
    kind = None
    if kind_or_name is not None and kind_or_name.lower() in _KIND_ALIASES:
        kind = _KIND_ALIASES[kind_or_name.lower()]
    elif kind_or_name is not None:
        if name is not None:
            raise InvalidInput(
                [Problem("KIND", f"unknown kind {kind_or_name!r}", "use flinkdeployment or flinksessionjob")]
            )
        name = kind_or_name
    store = _store()
    if name is not None:
        items = [_resolve(store, name, namespace, kind)]
    else:
        items = store.list_resources(kind=kind, namespace=None if all_namespaces else namespace)
    if output in ("json", "yaml"):
        docs = [dump_resource(r) for r in items]
        body: Any = docs[0] if name is not None else {"apiVersion": "v1", "kind": "List", "items": docs}
        if output == "json":
            sys.stdout.write(json.dumps(body, indent=2) + "\n")
        else:
            sys.stdout.write(yaml.safe_dump(body, sort_keys=False))
        return
    if not items:
        err.print(f"No resources found in {'any' if all_namespaces else namespace} namespace.")
        return
    wide = output == "wide"
    table = Table(box=None, pad_edge=False, header_style="bold")
    headers = ["NAME", "KIND", "JOB STATUS", "LIFECYCLE STATE"]
    headers += ["JOBMANAGER", "JOB ID", "REST", "AGE", "ERROR"] if wide else ["AGE"]
    for header in headers:
        table.add_column(header, no_wrap=True)
    for resource in items:
        table.add_row(*_row(resource, wide))
    out.print(table)


# ------------------------------------------------------------------------------------------------ describe


@app.command()
@main_guard
def describe(name: str, namespace: NamespaceOpt = "default") -> None:
    """Status, conditions, events and where the job's state lives."""
    home = _home()
    store = _store()
    resource = _resolve(store, name, namespace)
    status = resource.status
    out.print(f"[bold]Name:[/bold]        {resource.metadata.name}")
    out.print(f"[bold]Namespace:[/bold]   {resource.metadata.namespace}")
    out.print(f"[bold]Kind:[/bold]        {resource.kind}")
    out.print(
        f"[bold]Generation:[/bold]  {resource.metadata.generation} "
        f"(observed {status.observed_generation if status else '-'})"
    )
    out.print(f"[bold]Lifecycle:[/bold]   {_lifecycle(resource)}")
    if status is not None:
        js = status.job_status
        out.print(f"[bold]Job:[/bold]         {js.state or '-'}  id={js.job_id or '-'}  name={js.job_name or '-'}")
        if isinstance(resource, FlinkDeployment) and resource.status is not None:
            out.print(f"[bold]JobManager:[/bold]  {resource.status.job_manager_deployment_status.value}")
            for k, v in sorted(resource.status.cluster_info.items()):
                out.print(f"  {k}: {v}")
        recon = status.reconciliation_status
        stable = recon.last_stable_spec == recon.last_reconciled_spec and recon.last_stable_spec is not None
        out.print(
            f"[bold]Reconciliation:[/bold] {recon.state.value}; "
            f"last reconciled spec is {'stable' if stable else 'not yet stable'}"
        )
        if status.error:
            out.print("[bold red]Error:[/bold red]\n  " + status.error.replace("\n", "\n  "))
        if status.conditions:
            out.print("[bold]Conditions:[/bold]")
            for c in status.conditions:
                out.print(f"  {c.type}={c.status} reason={c.reason} since {c.last_transition_time}")
    if isinstance(resource, FlinkDeployment) and target.kubernetes():
        conf = resource.spec.flink_configuration
        out.print("[bold]State lives in:[/bold]")
        out.print(f"  checkpoints: {checkpoint_dir(conf) or 'not set (needed for last-state and savepoint upgrades)'}")
        out.print(f"  savepoints:  {savepoint_dir(conf) or 'not set'}")
        name, ns = resource.metadata.name, resource.metadata.namespace
        out.print(f"[bold]Pods:[/bold]        kubectl get pods -n {ns} -l app={name}")
        out.print(f"[bold]Logs:[/bold]        kubectl logs -n {ns} deploy/{name}")
    elif isinstance(resource, FlinkDeployment):
        config = rendered_config(resource)
        out.print("[bold]State lives in:[/bold]")
        out.print(f"  checkpoints: {checkpoint_dir(config)}")
        out.print(f"  savepoints:  {savepoint_dir(config)}")
        ha = config.get("high-availability.storageDir")
        out.print(f"  HA metadata: {ha or 'none (no high availability configured)'}")
        _describe_data_plane(resource, config, home)
        _describe_state(resource)
        out.print(f"[bold]Logs:[/bold]        {_cluster_root(home, resource)}/log")
    events = store.events(ResourceKey.of(resource))
    out.print("[bold]Events:[/bold]" + ("" if events else " <none>"))
    for event in events[-20:]:
        when = datetime.fromtimestamp(event.last_timestamp, UTC).strftime("%H:%M:%S")
        count = f" (x{event.count})" if event.count > 1 else ""
        out.print(f"  {when} {event.type:<7} {event.reason:<18} {event.message}{count}")


def _describe_data_plane(resource: FlinkDeployment, config: dict[str, str], home: Path) -> None:
    """Plugins and connectors flinkops adds to the cluster, and where S3 access comes from (never the keys)."""
    from flinkops.api.plugins import choose_plugins, requested_connectors
    from flinkops.provisioning.local import DataPlane

    args = resource.spec.job.args if resource.spec.job is not None else []
    choice = choose_plugins(resource.spec, config, args)
    for name in choice.plugins:
        out.print(f"  plugin:      {name} ({choice.reasons.get(name, 'requested')})")
    if choice.ambiguity:
        out.print(f"  [yellow]warning:[/yellow] {choice.ambiguity}")
    for connector in requested_connectors(resource.spec.flink_configuration):
        out.print(f"  connector:   {connector}")
    if DataPlane.uses_s3(config, args) or choice.plugins:
        access = _local().data_plane(home).s3_access(config)
        out.print(f"  S3:          {access.describe()}")


def _cluster_root(home: Path, resource: FlinkDeployment) -> Path:
    """The local cluster's directory: its own, or the ``gen-<N>/`` of a pre-started cluster it promoted."""
    cluster = home / "clusters" / resource.metadata.namespace / resource.metadata.name
    try:
        root = json.loads((cluster / "cluster.json").read_text()).get("root")
    except (OSError, ValueError, AttributeError):
        return cluster
    return Path(root) if isinstance(root, str) and root else cluster


def _describe_state(resource: FlinkDeployment) -> None:
    """The job's own state: what the next start restores, the savepoints taken, and each run of the job."""
    status = resource.status
    if status is None:
        return
    js = status.job_status
    if js.upgrade_savepoint_path:
        out.print(f"  last restored / next restore from: {js.upgrade_savepoint_path}")
    info = js.savepoint_info
    if info is not None and info.last_savepoint is not None:
        sp = info.last_savepoint
        when = datetime.fromtimestamp(sp.time_stamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.print(
            f"  last savepoint: {sp.location} ({sp.trigger_type}, {when} UTC); {len(info.savepoint_history)} in history"
        )
    if info is not None and info.trigger_id:
        out.print(f"  savepoint in progress: {info.trigger_type} trigger {info.trigger_id}")
    if status.deployment_history:
        out.print("[bold]Runs:[/bold] (generation, job, why, restored from, downtime)")
        for run in status.deployment_history[-5:]:
            downtime = f"{run.downtime_ms / 1000:.1f}s" if run.downtime_ms is not None else "-"
            restored = run.restored_from or "empty state"
            out.print(f"  gen {run.generation}  {run.job_id}  {run.reason:<18} {restored}  {downtime}")


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
    if (name is None) == (not filename):
        problem = Problem("NAME", "give a resource name or -f FILE (not both)", "e.g. flinkops delete my-job")
        raise InvalidInput([problem])
    store = _store()
    if filename:
        keys = [ResourceKey.of(r) for r in _read_files(filename)]
        # Session jobs go before the session clusters they run on.
        keys.sort(key=lambda k: k.kind != "FlinkSessionJob")
        present = [k for k in keys if store.get(k) is not None]
        for key in keys:
            if key not in present:
                out.print(f"{key.kind.lower()}/{key.name} not found (already deleted)")
    else:
        present = [ResourceKey.of(_resolve(store, name or "", namespace))]
    for key in present:
        _delete_one(store, key, wait, timeout)


def _delete_one(store: ResourceStore, key: ResourceKey, wait: bool, timeout: float) -> None:
    try:
        store.request_deletion(key)
    except NotFound:
        out.print(f"{key.kind.lower()}/{key.name} deleted")  # no cleanup finalizer yet: gone at once
        return
    _ensure_controller()
    out.print(f"{key.kind.lower()}/{key.name} deletion requested")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    with out.status(f"deleting {key.name}…"):
        while store.get(key) is not None:
            if time.monotonic() > deadline:
                raise FlinkopsError(
                    f"{key.name} is still being deleted after {timeout:.0f}s; see `flinkops describe {key.name}`"
                )
            time.sleep(0.2)
    out.print(f"{key.kind.lower()}/{key.name} deleted (state in checkpoint/savepoint storage is kept)")


def _set_job_state(name: str, namespace: str, state: JobState) -> None:
    store = _store()
    resource = _resolve(store, name, namespace)
    if resource.spec.job is None:
        raise InvalidInput([Problem("spec.job", f"{name} has no job (a session cluster cannot be {state.value})")])
    if resource.spec.job.state == state:
        out.print(f"{resource.kind.lower()}/{name} already {state.value}")
        return
    job = resource.spec.job.model_copy(update={"state": state})
    store.apply(resource.model_copy(update={"spec": resource.spec.model_copy(update={"job": job})}))
    _ensure_controller()
    out.print(f"{resource.kind.lower()}/{name} {'suspend' if state == JobState.SUSPENDED else 'resume'} requested")


@app.command()
@main_guard
def suspend(name: str, namespace: NamespaceOpt = "default") -> None:
    """Stop the job and its cluster, keeping the spec (sets spec.job.state: suspended)."""
    _set_job_state(name, namespace, JobState.SUSPENDED)


@app.command()
@main_guard
def resume(name: str, namespace: NamespaceOpt = "default") -> None:
    """Start a suspended job again (sets spec.job.state: running)."""
    _set_job_state(name, namespace, JobState.RUNNING)


# ------------------------------------------------------------------------------------------------ logs/lint


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
    from flinkops.flink.distribution import find_distribution

    target.local_only("logs", f"kubectl logs -n {namespace} deployment/{name} (add -taskmanager for TaskManagers)")
    component = "jobmanager" if jobmanager else "taskmanager" if taskmanager else None
    runtime = LocalRuntime(_home(), find_distribution())
    files = runtime.log_files(ClusterKey(namespace, name), component)
    if not files:
        raise NotFound(f"no logs for {name} (it has not been deployed, or it was deleted)")
    for path in files:
        if path.stat().st_size == 0:
            continue
        out.print(f"[bold]==> {path} <==[/bold]")
        lines = path.read_text(errors="replace").splitlines()
        sys.stdout.write("\n".join(lines[-tail:] if tail else lines) + "\n")


@app.command()
@main_guard
def lint(filename: FileOpt) -> None:
    """Check resources for the known Flink-on-Kubernetes pitfalls. Exit 1 when an error-severity rule fires."""
    from flinkops.core.lint import lint as lint_resource

    resources = _read_files(filename)
    errors = 0
    total = 0
    for resource in resources:
        findings = lint_resource(resource)
        label = f"{resource.kind}/{resource.metadata.name}"
        if not findings:
            out.print(f"[green]✓[/green] {label}: no findings")
            continue
        for f in findings:
            total += 1
            errors += f.severity == "error"
            color = "red" if f.severity == "error" else "yellow"
            out.print(f"[{color}]{f.severity.upper()}[/{color}] {f.rule_id} {label} {f.path}: {f.message}")
            out.print(f"    why: {f.why}")
            out.print(f"    fix: {f.fix}")
    if total:
        out.print(f"{total} finding(s), {errors} error(s)")
    if errors:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------------ crds


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
    if output not in ("yaml", "json"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use yaml or json")])
    definitions = custom_resource_definitions()
    if output == "json":
        body = {"apiVersion": "v1", "kind": "List", "items": definitions}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(definitions, sort_keys=False))


# ------------------------------------------------------------------------------------------------ controller


@controller_app.command("run")
def controller_run(
    pid_file: Annotated[bool, typer.Option("--pid-file", hidden=True)] = False,
    poll: Annotated[float, typer.Option(help="Seconds between checks for changed resources.")] = 0.5,
) -> None:
    """Run the controller in the foreground (Ctrl-C stops it; Flink clusters keep running)."""
    home = _home()
    home.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per REST call drowns the useful ones
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if pid_file:
        _daemon().write_pid_file(home)
    from flinkops.controller import run_loop

    controller, store = _local().build_controller(home)
    logging.getLogger("flinkops.controller").info("controller started; home %s", home)
    run_loop(controller, store, SystemClock(), lambda: stopping, poll=poll)
    logging.getLogger("flinkops.controller").info("controller stopped")


@controller_app.command("start")
@main_guard
def controller_start() -> None:
    """Start the controller daemon in the background (no-op when it runs)."""
    target.local_only("controller", "the operator runs in the cluster: kubectl -n <operator namespace> get pods,lease")
    state = _daemon().start_daemon(_home())
    out.print(f"controller running (pid {state.pid}); log: {state.log_file}")


@controller_app.command("stop")
@main_guard
def controller_stop() -> None:
    """Stop the controller daemon. Running Flink clusters keep running and are adopted on the next start."""
    target.local_only("controller", "the operator runs in the cluster: kubectl -n <operator namespace> get pods,lease")
    stopped = _daemon().stop_daemon(_home())
    out.print("controller stopped" if stopped else "controller was not running")


@controller_app.command("status")
@main_guard
def controller_status() -> None:
    """Whether the controller daemon runs, and what it manages. Exit 1 when it is not running."""
    target.local_only("controller", "the operator runs in the cluster: kubectl -n <operator namespace> get pods,lease")
    home = _home()
    state = _daemon().daemon_state(home)
    if state.running:
        out.print(f"controller running (pid {state.pid}); home {home}; log: {state.log_file}")
    else:
        out.print(f"controller not running; home {home}")
    store = _store()
    count = len(store.list_resources())
    out.print(f"{count} resource(s)")
    if not state.running:
        raise typer.Exit(1)


from flinkops.cli import state as _state  # noqa: E402,F401  (registers savepoint, snapshots, restore, rollback, plan)


def run() -> None:
    app()
