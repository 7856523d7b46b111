"""``flinkops gateway run|check``: the authenticated door to every deployment's Flink UI and REST API.

Registered on ``cli.app.app`` by ``cli.main``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from flinkops.cli import target
from flinkops.cli.operator import configure_logging
from flinkops.cli.output import main_guard, out
from flinkops.errors import InvalidInput, Problem
from flinkops.service.target import gateway_namespaces, gateway_settings

__all__ = ["gateway_app"]

gateway_app = typer.Typer(
    help=(
        "One authenticated door to every deployment's Flink UI and REST API: https://<gateway>/<namespace>/<name>/.\n\n"
        "Callers sign in with OpenID Connect (browsers through the provider's sign-in page, API clients with a "
        "bearer token) or present a client certificate whose CN matches a certificate rule. Role bindings say what "
        "each may do per namespace or deployment (viewer: look; operator: savepoint, stop, cancel, rescale; admin: "
        "the rest); nobody uploads or runs jars unless a jars rule names them; encoded path traversal is refused "
        "before Flink sees it; every request is one JSON line in the audit log.\n\n"
        "Settings: <FLINKOPS_HOME>/gateway.yaml (or --config); with that file present the controller daemon starts "
        "the gateway beside itself. The README's Security section has a complete example.\n\n"
        "  flinkops gateway check\n\n  flinkops gateway run"
    ),
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="The gateway's settings (default: <FLINKOPS_HOME>/gateway.yaml).")
]


@gateway_app.command("run")
@main_guard
def gateway_run(config: ConfigOpt = None) -> None:
    """Serve the gateway in the foreground until Ctrl-C or SIGTERM (exit 2 when the settings are bad)."""
    fmt = os.environ.get("FLINKOPS_LOG_FORMAT", "text")
    if fmt not in ("text", "json"):
        raise InvalidInput([Problem("FLINKOPS_LOG_FORMAT", f"{fmt!r} is neither text nor json")])
    configure_logging(fmt)  # json in a pod (the chart sets it), like the operator's lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from flinkops.cli.fleet import cost_hook, report_hook
    from flinkops.web.app import behind_gateway

    where = target.current()
    # On Kubernetes the gateway reads only the namespaces it serves (WATCH_NAMESPACES; RBAC may allow no others).
    served = () if where.local else gateway_namespaces()
    where.run_gateway(config, pages=behind_gateway(where, cost_hook(), served, report=report_hook()))


@gateway_app.command("check")
@main_guard
def gateway_check(config: ConfigOpt = None) -> None:
    """Check the settings and say what they allow; exit 2 with each bad field's path."""
    settings = gateway_settings(target.current().home, config)
    scheme = "https" if settings.tls is not None else "http"
    out.print(f"gateway settings are valid: {scheme}://{settings.listen}")
    if settings.oidc is not None:
        out.print(f"  sign-in: OpenID Connect, issuer {settings.oidc.issuer}, client {settings.oidc.client_id}")
    for rule in settings.certificate_rules:
        match = f"regex {rule.regex}" if rule.regex is not None else f"exactly {rule.exact}"
        scope = f" in {rule.namespace}" + (f"/{rule.deployment}" if rule.deployment else "") if rule.namespace else ""
        out.print(f"  client certificates: rule {rule.name}, CN {match}{scope}")
    for binding in settings.roles:
        scope = (
            binding.namespace + (f"/{binding.deployment}" if binding.deployment else "")
            if binding.namespace
            else "everywhere"
        )
        out.print(f"  {binding.role} {scope}: {', '.join(binding.subjects)}")
    for jar in settings.jars:
        out.print(f"  jars: {', '.join(jar.subjects)}")
    if not settings.jars:
        out.print("  jars: nobody uploads or runs jars through the gateway")
