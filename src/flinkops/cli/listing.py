"""``flinkops get``'s work, without typer or rich: the command every script and person runs most, and the one
that must answer fast. ``cli.entry`` calls ``show`` directly for a plain ``get`` (no typer at all); the typer
command in ``cli.resources`` calls it too, for everything else (help, errors, a chosen context).

Called by: ``cli.entry`` and ``cli.resources``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flinkops.cli import target
from flinkops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.service.resources import ResourceView

__all__ = ["age", "show", "timestamp"]


def show(kind_or_name: str | None, name: str | None, output: str, namespace: str, all_namespaces: bool) -> None:
    """Print resources and their status: a table (``wide`` adds columns), or the CRD-shaped JSON/YAML."""
    from flinkops.service.resources import get as get_one
    from flinkops.service.resources import kind_named, list_resources

    if output not in ("table", "wide", "json", "yaml"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use table, wide, json or yaml")])
    kind = kind_named(kind_or_name) if kind_or_name is not None else None
    if kind_or_name is not None and kind is None:
        if name is not None:
            raise InvalidInput(
                [Problem("KIND", f"unknown kind {kind_or_name!r}", "use flinkdeployment or flinksessionjob")]
            )
        name = kind_or_name
    where = target.current()
    if name is not None:
        views = [get_one(where, name, namespace, kind)]
    else:
        views = list_resources(where, kind, None if all_namespaces else namespace)
    if output in ("json", "yaml"):
        docs = [dict(v.document) for v in views]
        body: Any = docs[0] if name is not None else {"apiVersion": "v1", "kind": "List", "items": docs}
        if output == "json":
            sys.stdout.write(json.dumps(body, indent=2) + "\n")
        else:
            import yaml

            sys.stdout.write(yaml.safe_dump(body, sort_keys=False))
        return
    if not views:
        sys.stderr.write(f"No resources found in {'any' if all_namespaces else namespace} namespace.\n")
        return
    wide = output == "wide"
    headers = ["NAME", "KIND", "JOB STATUS", "LIFECYCLE STATE"]
    headers += ["JOBMANAGER", "JOB ID", "REST", "AGE", "ERROR"] if wide else ["AGE"]
    sys.stdout.write(_table(headers, [_row(view, wide) for view in views], bold=sys.stdout.isatty()))
    sys.stdout.write(_causes(views))


def _causes(views: list[ResourceView]) -> str:
    """Below the table, the recorded error of each resource that has one, whole (its first line): why it FAILED,
    or what the controller is retrying, without a `describe`."""
    lines = [f"{view.name}: {view.error.splitlines()[0]}" for view in views if view.error and view.error.strip()]
    return "\n" + "".join(line + "\n" for line in lines) if lines else ""


def timestamp(ms: int | None) -> str:
    """Epoch milliseconds as people read them (UTC, to the second); ``-`` for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(created: str | None) -> str:
    """How long ago ``created`` (``2026-01-02T03:04:05Z``) was, kubectl style (``5m``, ``3h``, ``2d``)."""
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


def _row(view: ResourceView, wide: bool) -> list[str]:
    row = [view.name, view.kind, view.job_state or "-", view.lifecycle]
    if not wide:
        return [*row, age(view.created)]
    error = ((view.error or "").splitlines() or [""])[0][:60]
    return [*row, view.jobmanager or "-", view.job_id or "-", view.rest_url or "-", age(view.created), error or "-"]


def _table(headers: list[str], rows: list[list[str]], *, bold: bool) -> str:
    """kubectl's table: left-aligned columns two spaces apart, never wrapped. Written by hand rather than with
    rich, whose import alone took half of ``flinkops get``'s time."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    head = line(headers)
    return ("\033[1m" + head + "\033[0m" if bold else head) + "\n" + "".join(line(row) + "\n" for row in rows)
