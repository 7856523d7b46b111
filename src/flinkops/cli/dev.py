"""``flinkops dev``: run the data plane a Flink job talks to (Kafka, S3, ZooKeeper) as local processes, and on
request a Kubernetes control plane.

Each service is a real server (a KRaft Kafka broker, a MinIO S3 store, ZooKeeper; etcd, kube-apiserver and
kube-controller-manager for ``kubernetes``) bound to 127.0.0.1, with its data, pid files and logs under
``$FLINKOPS_HOME/dev/<service>/`` (see :mod:`flinkops.dev.services`). ``cli.app`` loads this module only
when a ``dev`` command runs (or ``--help`` lists it); the shared console and error guard come from ``cli.output``,
and boto3 and confluent-kafka load only in the commands that need them.

Exit codes as everywhere in flinkops: 0 success, 1 the operation failed, 2 invalid input (an unknown service).
"""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from flinkops.cli.output import err, main_guard, out
from flinkops.dev import DEFAULT_SERVICES, PORT_OPTIONS, SERVICES
from flinkops.errors import NotFound
from flinkops.settings import default_home

if TYPE_CHECKING:
    from flinkops.dev.services import DevServices, ServiceStatus

__all__ = ["dev_app"]

_SERVICE_LIST = ", ".join(SERVICES)
_DEFAULT_LIST = ", ".join(DEFAULT_SERVICES)

dev_app = typer.Typer(
    help=(
        "Run Kafka, an S3 store (MinIO) and ZooKeeper as local processes for jobs to use, and on request a "
        "Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager; no kubelet, so pods stay "
        "Pending).\n\n"
        "Each service binds 127.0.0.1 and keeps its data, pid file and log in $FLINKOPS_HOME/dev/<service>/; "
        "data survives `down` and `up`. The first `up` downloads Kafka's jars with Maven and builds MinIO with Go "
        "(minutes, once; cached in ~/.cache/flinkops); the first `up kubernetes` builds Kubernetes and etcd with Go "
        "(longer, once). Typical session:\n\n"
        "  flinkops dev up\n\n"
        '  eval "$(flinkops dev env)"\n\n'
        "  flinkops dev topic transactions --partitions 4\n\n"
        "  flinkops dev bucket checkpoints --versioned\n\n"
        "  flinkops dev status\n\n"
        "  flinkops dev down\n\n"
        f"Services: {_SERVICE_LIST} (`up` without names starts {_DEFAULT_LIST}). Default ports: Kafka 9092 "
        "(controller 9093), S3 9000, ZooKeeper 2181, Kubernetes API 6443."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


ServicesArg = Annotated[
    list[str] | None,
    typer.Argument(help=f"Services to act on ({_SERVICE_LIST}); all of them when none is given.", show_default=False),
]


UpServicesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help=f"Services to start ({_SERVICE_LIST}); {_DEFAULT_LIST} when none is given.", show_default=False
    ),
]


class Output(StrEnum):
    table = "table"
    json = "json"


def _services() -> DevServices:
    from flinkops.dev.services import DevServices  # the servers' modules load only when a command runs

    return DevServices(default_home())


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    from flinkops.dev.services import check_names as check

    return check(names)


def _progress(message: str) -> None:
    err.print(message, markup=False)


# ------------------------------------------------------------------------------------------------ up / down


@dev_app.command(
    "up",
    help=(
        "Start services (all of them by default) and wait until each answers; print where they are.\n\n"
        "A service that already runs is left alone. Ports are remembered: a later `up` reuses them until another "
        "is given. When a port is taken by another process, nothing is started for that service and the error "
        "names the option that picks another port. Examples:\n\n"
        "  flinkops dev up\n\n"
        "  flinkops dev up kafka s3 --kafka-port 19092 --s3-port 19000\n\n"
        "  flinkops dev up kubernetes\n\n"
        "  flinkops dev up kubernetes --node\n\n"
        "--node also runs a real Kubernetes node on this machine (root only; one per machine): containerd, the "
        "kubelet, kube-proxy, kube-scheduler and CoreDNS on a bridge it creates (10.244.0.1/24), fenced so that "
        "nothing leaves the machine, with a locally built Flink image (flink:2.2). It changes host settings (a "
        "bridge, iptables chains, sysctls, cgroups, mounts); `flinkops dev down kubernetes` puts them back. The "
        "first run builds the kubelet, kube-proxy, kube-scheduler and CoreDNS with Go and the image with "
        "debootstrap (minutes, once)."
    ),
)
@main_guard
def up(
    services: UpServicesArg = None,
    kafka_port: Annotated[
        int | None, typer.Option("--kafka-port", help="Kafka client port (default 9092, or the port of the last up).")
    ] = None,
    s3_port: Annotated[
        int | None, typer.Option("--s3-port", help="S3 API port (default 9000, or the port of the last up).")
    ] = None,
    zookeeper_port: Annotated[
        int | None,
        typer.Option("--zookeeper-port", help="ZooKeeper client port (default 2181, or the port of the last up)."),
    ] = None,
    kubernetes_port: Annotated[
        int | None,
        typer.Option(
            "--kubernetes-port", help="Kubernetes API server port (default 6443, or the port of the last up)."
        ),
    ] = None,
    node: Annotated[
        bool,
        typer.Option("--node", help="Also run a real Kubernetes node (implies kubernetes; root only; see above)."),
    ] = False,
) -> None:
    """Start services; see the help text above."""
    names = check_names(services or DEFAULT_SERVICES)
    if node and "kubernetes" not in names:
        names = check_names([*names, "kubernetes"])
    given = {"kafka": kafka_port, "s3": s3_port, "zookeeper": zookeeper_port, "kubernetes": kubernetes_port}
    ports = {name: port for name, port in given.items() if port is not None}
    ignored = [PORT_OPTIONS[name] for name in ports if name not in names]
    if ignored:
        err.print(f"note: {', '.join(ignored)} ignored: that service is not being started", markup=False)
        ports = {name: port for name, port in ports.items() if name in names}
    statuses = _services().up(names, ports, progress=_progress)
    for status in statuses:
        out.print(f"{status.name:<10} {status.endpoint or '-':<24} pid {status.pid}", markup=False)
    if node:
        node_status = _services().up_node(progress=_progress)
        out.print(f"{'node':<10} {'10.244.0.1 (Ready)':<24} state in {node_status.root}", markup=False)
    out.print('Use them from a shell: eval "$(flinkops dev env)"', markup=False)


@dev_app.command(
    "down",
    help=(
        "Stop services (all of them by default). Their data stays for the next `up`.\n\n"
        "Stopping kubernetes first stops its node (if `up --node` started one): its pods are deleted, its processes "
        "stopped, and every host setting it changed is restored (sysctls, iptables chains, the bridge, cgroups, "
        "mounts). `down kubernetes --node` stops only the node.\n\n"
        "To start from scratch, stop them and delete $FLINKOPS_HOME/dev/<service>/."
    ),
)
@main_guard
def down(
    services: ServicesArg = None,
    node: Annotated[bool, typer.Option("--node", help="Stop only the Kubernetes node, not the control plane.")] = False,
) -> None:
    """Stop services, keeping their data."""
    if node:
        problems = _services().down_node()
        if problems:
            from flinkops.errors import RuntimeFailure

            raise RuntimeFailure("the node stopped, but the host is not fully restored: " + "; ".join(problems))
        out.print("node " + ("stopped, host settings restored" if problems is not None else "was not running"))
        return
    names = check_names(services or SERVICES)
    stopped = _services().down(names)
    for name in names:
        out.print(f"{name} {'stopped' if name in stopped else 'was not running'}", markup=False)


# ------------------------------------------------------------------------------------------------ status / env


@dev_app.command(
    "status",
    help=(
        "Whether each service runs and answers a protocol-level check, with its pid, endpoint and data.\n\n"
        "Exit code: without SERVICES always 0 (an overview). With SERVICES named, 1 when any of them is not "
        "running and healthy, so a script can wait: until flinkops dev status kafka; do sleep 1; done"
    ),
)
@main_guard
def status(
    services: ServicesArg = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table, or json for scripts.")] = Output.table,
) -> None:
    """Show the services' state."""
    names = check_names(services or SERVICES)
    statuses = _services().status(names)
    node = _services().node_status() if "kubernetes" in names else None
    if output is Output.json:
        document: dict[str, object] = {"services": [s.to_json() for s in statuses]}
        if node is not None:
            document["node"] = node.to_json()
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _print_table(statuses)
        if node is not None:
            state = "ready" if node.healthy else ("running, not ready" if node.running else "stopped")
            running = ", ".join(f"{name} {pid}" for name, pid in node.pids.items() if pid is not None)
            out.print(f"node: {state} (10.244.0.1; state in {node.root}){': ' + running if running else ''}")
    if services and not all(s.healthy for s in statuses):
        raise typer.Exit(1)


def _print_table(statuses: list[ServiceStatus]) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in ("NAME", "STATE", "PID", "ENDPOINT", "DATA"):
        table.add_column(header, no_wrap=True)
    for s in statuses:
        state = "healthy" if s.healthy else ("running, not answering" if s.running else "stopped")
        table.add_row(s.name, state, str(s.pid or "-"), s.endpoint or "-", str(s.data_dir))
    out.print(table)


@dev_app.command(
    "env",
    help=(
        'Print `export` lines for the running services, for: eval "$(flinkops dev env)"\n\n'
        "KAFKA_BOOTSTRAP_SERVERS; AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (read "
        "by the AWS CLI and SDKs); FLINKOPS_ZOOKEEPER (a connect string for high-availability.zookeeper.quorum); "
        "KUBECONFIG (the dev Kubernetes control plane's admin kubeconfig, context flinkops-dev). Services that are "
        "not running are left out."
    ),
)
@main_guard
def env() -> None:
    """Print shell exports for the running services."""
    from flinkops.dev.s3 import REGION

    services = _services()
    lines: list[tuple[str, str]] = []
    bootstrap = services.kafka_bootstrap()
    if bootstrap:
        lines.append(("KAFKA_BOOTSTRAP_SERVERS", bootstrap))
    s3 = services.s3_settings()
    if s3 is not None:
        lines += [
            ("AWS_ENDPOINT_URL", s3.endpoint),
            ("AWS_ACCESS_KEY_ID", s3.access_key),
            ("AWS_SECRET_ACCESS_KEY", s3.secret_key),
            ("AWS_REGION", REGION),
        ]
    zookeeper = services.zookeeper_connect()
    if zookeeper:
        lines.append(("FLINKOPS_ZOOKEEPER", zookeeper))
    kubeconfig = services.kubeconfig()
    if kubeconfig is not None:
        lines.append(("KUBECONFIG", str(kubeconfig)))
    if not lines:
        err.print("# no dev services are running (start them with `flinkops dev up`)", markup=False)
    for name, value in lines:
        sys.stdout.write(f"export {name}={shlex.quote(value)}\n")


@dev_app.command("logs")
@main_guard
def logs(
    service: Annotated[str, typer.Argument(help=f"One of {_SERVICE_LIST}.", show_default=False)],
    tail: Annotated[int, typer.Option("--tail", "-n", min=1, help="How many of the last lines to print.")] = 50,
) -> None:
    """Print the end of a service's log (its path goes to stderr, to follow it with `tail -f`)."""
    files = _services().log_files(service)
    main_log = files[-1]
    if not main_log.exists():
        raise NotFound(f"{service} has no log yet at {main_log}: it has never been started in this home")
    err.print(f"==> {main_log} <==", markup=False)
    sys.stdout.write("".join(_tail_lines(main_log, tail)))
    what = "the JVM's own output" if service == "kafka" else "more output"
    for extra in files[:-1]:
        if extra.exists() and extra.stat().st_size > 0:
            err.print(f"({what} is in {extra})", markup=False)


def _tail_lines(path: Path, count: int) -> list[str]:
    with path.open(errors="replace") as handle:
        lines = handle.readlines()
    return lines[-count:]


# ------------------------------------------------------------------------------------------------ bucket / topic


@dev_app.command("bucket")
@main_guard
def bucket(
    name: Annotated[str, typer.Argument(help="Bucket name (3-63 lowercase letters, digits, '-' and '.').")],
    versioned: Annotated[
        bool, typer.Option("--versioned", help="Turn on object versioning (also on an existing bucket).")
    ] = False,
) -> None:
    """Create a bucket on the dev S3 store (no-op when it exists). The s3 service must be up."""
    created = _services().create_bucket(name, versioned=versioned)
    state = "created" if created else "already exists"
    out.print(f"bucket {name} {state}{' (versioned)' if versioned else ''}", markup=False)


@dev_app.command(
    "topic",
    help=(
        "Create a topic on the dev Kafka broker (no-op when it exists).\n\n"
        "The broker does not create topics on first use, as in production, so a job's topics must exist before "
        "it starts. The kafka service must be up; this needs the confluent-kafka package "
        "(pip install 'flinkops\\[kafka]')."
    ),
)
@main_guard
def topic(
    name: Annotated[str, typer.Argument(help="Topic name.")],
    partitions: Annotated[int, typer.Option("--partitions", "-p", min=1, help="Number of partitions.")] = 1,
) -> None:
    """Create a Kafka topic."""
    created = _services().create_topic(name, partitions)
    out.print(f"topic {name} {'created' if created else 'already exists'}", markup=False)
