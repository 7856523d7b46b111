"""``flinkops operator run``: the in-cluster operator (or one run from a workstation against a kubeconfig).

Thin: it reads options and the environment the Helm chart sets, configures logging (JSON lines with
``--log-format json`` or ``FLINKOPS_LOG_FORMAT=json``), and hands over to ``controller.operator``.

Called by: the CLI entry point (registered in ``cli.main``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from flinkops.cli.output import main_guard
from flinkops.errors import InvalidInput, Problem

__all__ = ["JsonFormatter", "operator_app"]

operator_app = typer.Typer(
    help=(
        "The Kubernetes operator: reconciles FlinkDeployment and FlinkSessionJob resources on an API server.\n\n"
        "In a pod (installed by the Helm chart under deploy/helm/flinkops) it uses the pod's service account. "
        "From a workstation:\n\n"
        "  flinkops operator run --context my-cluster --namespace flink-jobs --no-leader-election\n\n"
        "Install the CRDs first: flinkops crds | kubectl apply -f -"
    ),
    no_args_is_help=True,
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("httpx", "httpx2"):  # one line per API call (httpx2: lightkube's copy) drowns the useful ones
        logging.getLogger(name).setLevel(logging.WARNING)


@operator_app.command("run")
@main_guard
def operator_run(
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: the current one, or in-cluster).")
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="A namespace to watch (repeat for several). Default: $WATCH_NAMESPACES (comma-separated), "
            "or every namespace when that is empty.",
        ),
    ] = None,
    leader_election: Annotated[
        bool, typer.Option("--leader-election/--no-leader-election", help="Act only while holding the Lease.")
    ] = True,
    lease_name: Annotated[str, typer.Option(help="Name of the coordination.k8s.io Lease.")] = "flinkops-operator",
    lease_namespace: Annotated[
        str | None, typer.Option(help="Namespace of the Lease (default: $OPERATOR_NAMESPACE, else the context's).")
    ] = None,
    lease_duration: Annotated[float, typer.Option(help="Seconds a standby waits before taking over.")] = 15.0,
    http_address: Annotated[
        str | None,
        typer.Option(help="Address of /metrics, /healthz, /readyz (default: 0.0.0.0 in a pod, else 127.0.0.1)."),
    ] = None,
    http_port: Annotated[int, typer.Option(help="Port of /metrics, /healthz, /readyz (0: any free port).")] = 8085,
    log_format: Annotated[str, typer.Option(help="text or json (default: $FLINKOPS_LOG_FORMAT, else text).")] = "",
    qps: Annotated[
        float, typer.Option(help="Most API server requests per second (a burst may be twice that).")
    ] = 200.0,
    workers: Annotated[
        int, typer.Option(min=1, help="Passes that may run at once (each resource always on the same worker).")
    ] = 4,
    progress_check_interval: Annotated[
        str | None,
        typer.Option(
            help="How often what happens inside Flink (a job starting, its first checkpoint) is looked at between "
            "watch events, as the reference operator's kubernetes.operator.observer.progress-check.interval; a "
            "FlinkDeployment may set its own. A duration: '10 s' (default: $FLINKOPS_PROGRESS_CHECK_INTERVAL, "
            "else 10 s)."
        ),
    ] = None,
    rest_address: Annotated[
        str | None,
        typer.Option(
            help="How JobManagers' REST APIs are reached: service-dns (their REST Service's cluster DNS name; "
            "right in a pod) or cluster-ip (the Service's ClusterIP, read from the API: for an operator outside "
            "the cluster, where cluster DNS names do not resolve). Default: $FLINKOPS_REST_ADDRESS, else "
            "service-dns."
        ),
    ] = None,
    webhook_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Serve the validating admission webhook (/validate, HTTPS) on this port; 0: no webhook. Default: "
            "$FLINKOPS_WEBHOOK_PORT, else none. Its certificates: $FLINKOPS_WEBHOOK_CERT_DIR (tls.crt, tls.key, "
            "e.g. cert-manager's), else made and renewed in the Secret $FLINKOPS_WEBHOOK_SECRET for the Service "
            "$FLINKOPS_WEBHOOK_SERVICE, with the CA put into the ValidatingWebhookConfiguration "
            "$FLINKOPS_WEBHOOK_CONFIG.",
        ),
    ] = None,
) -> None:
    """Run the operator in the foreground until SIGTERM (exit 0) or a lost leadership (exit 1)."""
    from flinkops.kube.client import KubeClient, KubeUnavailable, load_config
    from flinkops.service.cost import home_prices
    from flinkops.settings import default_home
    from flinkops.wiring.memory import limit_arenas
    from flinkops.wiring.operator import Operator, rest_address_from_env, settings_from_env

    fmt = log_format or os.environ.get("FLINKOPS_LOG_FORMAT", "text")
    if fmt not in ("text", "json"):
        raise InvalidInput([Problem("--log-format", f"{fmt!r} is neither text nor json")])
    address = rest_address_from_env(rest_address)
    configure_logging(fmt)
    config = load_config(context, kubeconfig)
    settings = settings_from_env(
        namespaces=tuple(namespace) if namespace else None,
        leader_election=leader_election,
        lease_name=lease_name,
        lease_namespace=lease_namespace,
        lease_duration=lease_duration,
        http_address=http_address,
        http_port=http_port,
        default_namespace=config.namespace,
        workers=workers,
        rest_address=address,
        progress_check=progress_check_interval,
        webhook_port=webhook_port,
    )
    client = KubeClient(config, qps=qps, burst=int(qps * 2))
    try:
        client.verify()  # credentials the API server refuses are bad input: exit 2, naming file and user
    except KubeUnavailable as exc:
        logging.getLogger("flinkops.operator").warning("%s; starting anyway, the watches keep trying", exc)
    limit_arenas()  # before the operator's threads start (wiring.memory)
    # The cost series' price table: $FLINKOPS_HOME/prices.yaml when the operator's image or pod has one.
    operator = Operator(client, settings, prices=home_prices(default_home()))
    operator.install_signal_handlers()
    code = operator.run()
    client.close()
    if code:
        raise typer.Exit(code)
