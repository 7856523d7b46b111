"""The official Flink image's layout on this machine: what ``/opt/flink/...`` in a job means locally.

Every published example of the reference operator names its jar inside the image (``local:///opt/flink/examples/
streaming/StateMachineExample.jar``) and its scripts under ``/opt/flink/usrlib/``. Locally those paths resolve to:

- ``/opt/flink/usrlib/<x>``: ``<usrlib>/<x>``, the user's directory (the applied YAML's directory unless the
  ``flinkops.io/usrlib`` annotation names another);
- ``/opt/flink/examples/<dir>/<Name>.jar``: the example jar made from Flink's published examples (``flink.examples``,
  fetched once and cached; the release used is said when it is not the local Flink's own);
- ``/opt/flink/opt/flink-python*.jar``: the local distribution's flink-python jar, whatever version the image had;
- anything else under ``/opt/flink/`` (``lib/``, ``opt/``, ``plugins/``, ``conf/``): the same path in the local
  distribution.

A path outside ``/opt/flink/`` is not touched. Called by: the local provisioner (job jars, job arguments) and the
preflight of local files (``plan``, ``lint``, ``apply``, ``describe``). Pure except for the example fetch.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flinkops.errors import PermanentError
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.examples import cached_example, example_jar, known

__all__ = ["IMAGE_HOME", "ImageLayout", "Mapped", "image_relative"]

IMAGE_HOME = PurePosixPath("/opt/flink")


@dataclass(frozen=True)
class Mapped:
    """One ``/opt/flink/...`` path of a spec, and what it is on this machine."""

    written: str
    #: the local file; None for an example jar not made yet (``fetch=False``)
    path: Path | None
    #: how it was mapped, for describe and plan
    how: str

    def line(self) -> str:
        return f"{self.written} → {self.how}"


def image_relative(value: str) -> PurePosixPath | None:
    """The part under ``/opt/flink/`` of ``value`` (``local:///opt/flink/x``, ``file:///opt/flink/x`` or
    ``/opt/flink/x``), or None when ``value`` is not inside the image's Flink home."""
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme in ("local", "file"):
        if parsed.netloc:
            return None
        raw = urllib.parse.unquote(parsed.path)
    elif parsed.scheme == "" and value.startswith("/"):
        raw = value
    else:
        return None
    path = PurePosixPath(raw)
    try:
        rel = path.relative_to(IMAGE_HOME)
    except ValueError:
        return None
    if not rel.parts or ".." in rel.parts:
        return None
    return rel


class ImageLayout:
    """``/opt/flink/...`` → files on this machine, for one job (its usrlib directory)."""

    def __init__(self, dist: FlinkDistribution, usrlib: Path | None) -> None:
        self.dist = dist
        self.usrlib = usrlib

    def map(self, value: str, *, fetch: bool = True) -> Mapped | None:
        """What ``value`` is on this machine; None when it is not an ``/opt/flink/`` path. With ``fetch`` False an
        example jar that was not made yet is named but not fetched (its ``path`` is None). PermanentError for an
        example jar that cannot be had, or a usrlib path without a usrlib directory."""
        rel = image_relative(value)
        if rel is None:
            return None
        top, rest = rel.parts[0], PurePosixPath(*rel.parts[1:]) if len(rel.parts) > 1 else None
        if top == "usrlib":
            if self.usrlib is None:
                raise PermanentError(f"{value}: no usrlib directory is known for this job")
            path = self.usrlib.joinpath(*rest.parts) if rest is not None else self.usrlib
            return Mapped(value, path, f"{path} (usrlib: {self.usrlib})")
        if top == "examples" and rest is not None:
            name = str(rest)
            if not fetch:
                made = cached_example(name, self.dist.version)  # PermanentError for an unknown example
                if made is None:
                    example = known(name)
                    how = (
                        f"Flink's {example.artifact} for {self.dist.version} (the nearest published release), "
                        "fetched on first use"
                    )
                    return Mapped(value, None, how)
            else:
                made = example_jar(name, self.dist.version)
            return Mapped(value, made.path, made.describe(self.dist.version))
        local = self.dist.home.joinpath(*rel.parts)
        if top == "opt" and rel.name.startswith("flink-python") and rel.suffix == ".jar" and not local.is_file():
            python_jar = self.dist.python_jar()
            return Mapped(value, python_jar, f"{python_jar} (the local Flink {self.dist.version}'s flink-python)")
        return Mapped(value, local, f"{local} (the local Flink {self.dist.version} distribution)")

    def map_args(self, args: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], tuple[Mapped, ...]]:
        """``args`` with every ``/opt/flink/...`` path replaced by its local file, and the mappings made."""
        out: list[str] = []
        mapped: list[Mapped] = []
        for arg in args:
            found = self.map(arg) if image_relative(arg) is not None else None
            if found is not None and found.path is not None:
                out.append(str(found.path))
                mapped.append(found)
            else:
                out.append(arg)
        return tuple(out), tuple(mapped)
