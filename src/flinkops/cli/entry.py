"""The ``flinkops`` executable (and ``python -m flinkops``): a plain ``flinkops get`` is answered without loading
typer (its import alone is a third of the command's time); every other command, ``--help``, any option ``get``'s
fast path does not know, and every error go through the typer app in ``cli.main``.

Called by: the ``flinkops`` console script and ``flinkops.__main__``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["run"]

_GET_FLAGS = {"-A": "all_namespaces", "--all-namespaces": "all_namespaces"}
_GET_OPTIONS = {"-o": "output", "--output": "output", "-n": "namespace", "--namespace": "namespace"}


def _plain_get(args: list[str]) -> dict[str, object] | None:
    """``get``'s arguments when they are the plain ones (kind/name, -o, -n, -A), else None."""
    parsed: dict[str, object] = {"output": "table", "namespace": "default", "all_namespaces": False}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        option, eq, inline = arg.partition("=")
        if arg in _GET_FLAGS:
            parsed[_GET_FLAGS[arg]] = True
        elif option in _GET_OPTIONS and eq:
            parsed[_GET_OPTIONS[option]] = inline
        elif arg in _GET_OPTIONS and i + 1 < len(args) and not args[i + 1].startswith("-"):
            parsed[_GET_OPTIONS[arg]] = args[i + 1]
            i += 1
        elif not arg.startswith("-") and len(positional) < 2:
            positional.append(arg)
        else:
            return None  # --help, a combined short option, a third argument ...: typer answers
        i += 1
    parsed["kind_or_name"] = positional[0] if positional else None
    parsed["name"] = positional[1] if len(positional) > 1 else None
    return parsed


def run() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["get"] and not os.environ.get("FLINKOPS_TARGET"):
        plain = _plain_get(argv[1:])
        if plain is not None:
            from flinkops.cli.listing import show
            from flinkops.errors import FlinkopsError

            try:
                show(**plain)  # type: ignore[arg-type]
                return
            except FlinkopsError:
                pass  # the typer command reports it, with its exit code (it reads nothing twice that matters)
    from flinkops.cli.main import run as run_app

    run_app()
