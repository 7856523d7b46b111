"""The ``flinkops`` typer app: its global options and the option types the commands share.

Command modules (``cli.resources``, ``cli.show``, ``cli.state``, ``cli.controller``) register on ``app``;
``cli.main`` imports them all and runs it. ``flinkops dev`` is registered lazily: its module loads only when a
``dev`` command runs (or ``--help`` lists it), so the commands users type most never pay for it.

Kept import-light: every command pays for what is imported here. Command bodies import the service layer when
they run. Plain string and flag parameters skip typer's coercion (see ``_Identity``), so a command whose
parameters are all strings and flags, such as ``flinkops get``, never loads pydantic.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from flinkops.cli import target

__all__ = ["FileOpt", "NamespaceOpt", "TimeoutOpt", "UsrlibOpt", "WaitOpt", "app"]

# Sub-apps loaded on first use: command name -> "module:attribute" of its typer app.
_LAZY = {"dev": "flinkops.cli.dev:dev_app"}


class _Identity:
    """The coercion of a plain ``str`` or ``bool`` parameter: click hands over a value of that type (or None), which
    is the value already.

    Typer coerces every parameter through a pydantic ``TypeAdapter`` that it builds when the parameter is first
    processed, defaults and ``--help`` included; importing pydantic and building those adapters is about half of
    what ``flinkops get`` costs. A value of any other type (from an environment variable, say) still goes through
    typer's own coercion.
    """

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or isinstance(value, self.kind):
            return value
        param._runtime_param = None
        return param.get_runtime_param().coerce(value, param=param, ctx=ctx)


_IDENTITY: dict[object, _Identity] = {str: _Identity(str), bool: _Identity(bool)}


def _plain_values(params: list[Any]) -> None:
    """Give single-valued ``str``/``bool`` parameters without a custom parser the identity coercion. Parameters of
    another shape, and a typer without these attributes, keep typer's coercion."""
    for param in params:
        descriptor: Any = getattr(param, "type_descriptor", None)
        annotation = getattr(descriptor, "annotation", None)
        identity = _IDENTITY[annotation] if annotation is str or annotation is bool else None
        if (
            identity is None
            or getattr(descriptor.parameter_info, "parser", None) is not None
            or param.multiple
            or param.nargs != 1
            or getattr(param, "_runtime_param", False) is not None
        ):
            continue
        param._runtime_param = identity


class _Commands(TyperGroup):
    """The top-level command group: the sub-apps of ``_LAZY`` are added when first asked for, and plain string and
    flag parameters of the group and of the command it runs skip typer's coercion (``_Identity``)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in _LAZY if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attribute = _LAZY[cmd_name].split(":")
            command = typer.main.get_command(getattr(importlib.import_module(module), attribute))
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _plain_values(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _plain_values(command.get_params(ctx))
        return name, command, rest


app = typer.Typer(
    name="flinkops",
    cls=_Commands,
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


def _print_version(value: bool) -> None:
    if value:
        from flinkops import __version__

        typer.echo(f"flinkops {__version__}")
        raise typer.Exit()


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
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the flinkops version and exit."),
    ] = False,
) -> None:
    target.choose(context, kubeconfig)


FileOpt = Annotated[
    list[Path],
    typer.Option("--filename", "-f", help="YAML file with one or more resources ('-' reads stdin)."),
]
UsrlibOpt = Annotated[
    Path | None,
    typer.Option(
        "--usrlib",
        metavar="DIR",
        help="What the official Flink image's /opt/flink/usrlib/ is on this machine, for every resource in -f: "
        "with --usrlib ./jobs, jarURI local:///opt/flink/usrlib/my-job.jar runs ./jobs/my-job.jar (so do -py "
        "arguments). Default: the flinkops.io/usrlib annotation (relative to the YAML), else the YAML's own "
        "directory. plan and describe show what each path became. Local runtime only.",
    ),
]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the resource.")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the controller has done it.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait before giving up.")]
