"""The local runtime's Prometheus reporter plugin: Flink's, serving on 127.0.0.1 only.

Flink's ``PrometheusReporter`` (2.2.1) listens on every interface of the machine and has no host option. For
processes on this machine flinkops runs its own factory, :data:`~flinkops.api.reporters.LOOPBACK_FACTORY`
(``java/loopback-prometheus/``, one source file): a subclass of Flink's ``AbstractPrometheusReporter`` (the same
registry, so the same series) whose HTTP server binds ``127.0.0.1``, at the port or the first free port of the
range in ``metrics.reporter.<name>.port``, as Flink's does.

The class reads the reporter's package-private registry, so it must be loaded by the plugin class loader that
loads Flink's reporter: :func:`loopback_plugin_jar` compiles it against the distribution's
``flink-metrics-prometheus`` jar and ``flink-dist`` (``javac``, or the Java runtime's compiler module; about two
seconds, once) and writes one jar holding Flink's plugin jar's entries plus the two classes, with both factories
in ``META-INF/services``. The local runtime links that jar as the cluster's ``plugins/metrics-prometheus`` (the
distribution itself is never written to).

Invariants: the jar is cached under ``$FLINKOPS_CACHE/reporters/`` named after the digest of the source, Flink's
jar and the Java release, so a new Flink or a changed source makes a new jar and never a mismatched one; it lands
by rename (a reader never sees a torn jar) and concurrent builders are serialised by a file lock.

Called by: ``provisioning/local.py`` (before a cluster with a Prometheus reporter starts).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

from flinkops.api.reporters import LOOPBACK_FACTORY
from flinkops.artifacts import cache_dir, file_lock
from flinkops.flink import javabuild

__all__ = ["SOURCES_DIR", "LoopbackBuildError", "loopback_plugin_jar"]

#: The Java source of the reporter (shipped with the package).
SOURCES_DIR = Path(__file__).parent / "java" / "loopback-prometheus"
_SERVICES = "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"


class LoopbackBuildError(javabuild.JavaBuildError):
    """The reporter could not be compiled (no compiler, or a Flink whose reporter classes differ)."""


def loopback_plugin_jar(flink_jar: Path, classpath: Sequence[Path], java: str | None = None) -> Path:
    """The ``metrics-prometheus`` plugin jar for local processes: ``flink_jar`` (Flink's ``flink-metrics-prometheus``)
    plus flinkops' loopback reporter compiled against it and ``classpath`` (``flink-dist``). Built once, cached."""
    flink_digest = hashlib.sha256(flink_jar.read_bytes()).hexdigest()[:16]
    identity = f"flink-metrics-prometheus={flink_digest};release={javabuild.JAVA_RELEASE}"
    digest = javabuild.sources_digest(SOURCES_DIR, identity)
    stem = flink_jar.stem if flink_jar.stem.startswith("flink-metrics-prometheus") else "flink-metrics-prometheus"
    target = cache_dir() / "reporters" / f"{stem}-loopback-{digest}.jar"
    if target.is_file():
        return target
    with file_lock(target.with_name(f".{target.name}.lock")):
        if target.is_file():  # another process built it while this one waited
            return target
        classes = target.with_name(f".{target.stem}.classes.jar")
        javabuild.build_jar(
            SOURCES_DIR,
            [flink_jar, *classpath],
            classes,
            created_by="flinkops",
            error=LoopbackBuildError,
            java=java,
        )
        try:
            javabuild.write_atomically(target, lambda path: _merge(flink_jar, classes, path))
        finally:
            classes.unlink(missing_ok=True)
    return target


def _merge(flink_jar: Path, classes: Path, target: Path) -> None:
    """Flink's plugin jar's entries, then the compiled classes; the service file lists Flink's factories and ours."""
    with zipfile.ZipFile(flink_jar) as flink, zipfile.ZipFile(classes) as ours:
        factories = flink.read(_SERVICES).decode() if _SERVICES in flink.namelist() else ""
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in flink.infolist():
                if info.filename != _SERVICES:
                    out.writestr(info, flink.read(info))
            for info in ours.infolist():
                if info.filename.endswith(".class"):
                    out.writestr(info, ours.read(info))
            out.writestr(_SERVICES, factories.rstrip("\n") + f"\n{LOOPBACK_FACTORY}\n")
