"""The ``flinkops`` command line (kubectl-like): assembles the commands and runs them.

Exit codes: 0 success, 1 the operation failed, 2 invalid input (nothing was changed). ``-o json`` prints the
CRD-shaped object (``{"kind": "List", "items": [...]}`` for several), a stable interface for scripts.

Resources live in ``$FLINKOPS_HOME`` (default ``./.flinkops``). Commands that change resources start the
controller daemon on demand; ``flinkops controller run`` runs it in the foreground instead. With ``--context NAME``
(or ``FLINKOPS_TARGET=kubernetes``) the same commands talk to a Kubernetes API server, where the operator
(``flinkops operator run``, installed by the Helm chart) reconciles.

Layout: ``cli.app`` holds the typer app and the shared options; ``cli.resources``, ``cli.show`` (describe),
``cli.state`` and ``cli.controller`` register their commands on it, ``cli.operator`` and (lazily) ``cli.dev`` their
sub-apps.
Every command parses, calls ``flinkops.service`` and prints; none of them holds an operation of its own.
"""

from __future__ import annotations

from flinkops.cli import autoscaler, cost, fleet, render, resources, show, state
from flinkops.cli.app import app
from flinkops.cli.controller import controller_app
from flinkops.cli.gateway import gateway_app
from flinkops.cli.operator import operator_app

__all__ = ["app", "run"]

app.add_typer(controller_app, name="controller")
app.add_typer(gateway_app, name="gateway")
app.add_typer(operator_app, name="operator")

_REGISTERED = (
    autoscaler,
    cost,
    fleet,
    render,
    resources,
    show,
    state,
)  # imported for the commands they register on `app`


def run() -> None:
    app()
