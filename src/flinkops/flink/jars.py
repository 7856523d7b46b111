"""The optional jars a Flink cluster may need beyond its distribution: filesystem plugins and connectors,
at the versions that match the running Flink, fetched through Maven once and cached (``flinkops.artifacts``).

:func:`manifest_entry_class` reads the class a job jar names to run, as Flink does when no entry class is given.

Called by: the controller (for each cluster), ``make test``'s prefetch, the examples' build, the local runtime
and the preflight of local files.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from flinkops.api.plugins import connector_coordinates

__all__ = ["connector_jar", "manifest_entry_class", "patch_fallbacks", "plugin_jar"]

#: The manifest attributes Flink reads for a jar's entry class, in its order (``program-class`` first).
ENTRY_CLASS_ATTRIBUTES = ("program-class", "Main-Class")


def patch_fallbacks(version: str) -> list[str]:
    """2.2.1 → [2.2.0]: earlier patch releases of the same minor (plugins are released with Flink, but not
    every patch release of every plugin reaches every repository)."""
    parts = version.split(".")
    if len(parts) < 3 or not parts[2].isdigit():
        return []
    return [f"{parts[0]}.{parts[1]}.{p}" for p in range(int(parts[2]) - 1, -1, -1)]


def plugin_jar(name: str, flink_version: str, progress: Callable[[str], None] | None = None) -> Path:
    """Flink's optional plugin ``name`` (``s3-fs-presto``) for ``flink_version``, fetched once and cached."""
    from flinkops.artifacts import maven_jar

    fallbacks = patch_fallbacks(flink_version)
    return maven_jar("org.apache.flink", f"flink-{name}", flink_version, fallback_versions=fallbacks, progress=progress)


def connector_jar(name: str, flink_version: str, progress: Callable[[str], None] | None = None) -> Path:
    """Connector ``name`` (``kafka``) built for ``flink_version``, fetched once and cached; ValueError for a
    connector or Flink version flinkops does not know."""
    from flinkops.artifacts import maven_jar

    return maven_jar(*connector_coordinates(name, flink_version), progress=progress)


def manifest_entry_class(jar: Path) -> str | None:
    """The entry class ``jar``'s manifest names (``program-class``, else ``Main-Class``, as Flink reads them), or
    None when it names none. OSError/``zipfile.BadZipFile`` for a file that is not a readable jar."""
    with zipfile.ZipFile(jar) as archive:
        try:
            raw = archive.read("META-INF/MANIFEST.MF")
        except KeyError:
            return None
    attributes: dict[str, str] = {}
    last = ""
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if line.startswith(" ") and last:  # a continuation line (manifests wrap at 72 bytes)
            attributes[last] += line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            attributes.setdefault(last, value.strip())
        else:
            last = ""  # a blank line ends the main section
            if attributes:
                break
    for name in ENTRY_CLASS_ATTRIBUTES:
        value = attributes.get(name.lower(), "").strip()
        if value:
            return value
    return None
