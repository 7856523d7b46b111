"""Where every ``flinkops`` command writes, and how an error becomes an exit code.

``out`` is standard output (wide when piped, so tables are never cut to 80 columns), ``err`` standard error.
``main_guard`` maps the error taxonomy onto exit codes for any command: 2 for invalid input (every problem
with its field path, and that nothing was changed), 1 for any other flinkops error.

Import-light on purpose: the main CLI and ``flinkops dev`` both build on it, and the consoles (rich) load when
first written to, so ``flinkops get -o json`` never loads rich.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any, cast

import typer

from flinkops.errors import FlinkopsError, InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["err", "fail", "main_guard", "out", "print_problems"]


class _LazyConsole:
    """A rich ``Console`` made on first use."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 220))
err = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def _plain(text: str) -> str:
    """``text`` shown as it is: brackets in paths such as ``users[eks-admin]`` are not console markup."""
    from rich.markup import escape

    return escape(text)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error; returns the exit to raise."""
    err.print(f"[red]error:[/red] {_plain(message)}")
    return typer.Exit(code)


def print_problems(exc: InvalidInput) -> None:
    err.print(f"[red]error:[/red] invalid input ({len(exc.problems)} problem(s)); nothing was changed")
    for problem in exc.problems:
        err.print(f"  - {_plain(problem.render())}")


def main_guard(fn: Any) -> Any:
    """Map the error taxonomy onto exit codes for every command."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            print_problems(exc)
            raise typer.Exit(2) from exc
        except FlinkopsError as exc:
            raise fail(str(exc), 1) from exc

    return wrapper
