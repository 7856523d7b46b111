"""The optional jars a Flink cluster may need beyond its distribution: filesystem plugins and connectors,
at the versions that match the running Flink, fetched through Maven once and cached (``flinkops.artifacts``).

Called by: the controller (for each cluster), ``make test``'s prefetch, and the examples' build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flinkops.api.plugins import connector_coordinates

__all__ = ["connector_jar", "patch_fallbacks", "plugin_jar"]


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
