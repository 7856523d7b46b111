"""Heavy downloads (Maven jars and classpaths, binaries built with Go), fetched once and cached on this machine.

flinkops never hard-codes a repository address: jars come through ``mvn`` (so the user's ``~/.m2/settings.xml``
mirrors and proxies apply, and ``~/.m2/repository`` is shared with their other builds), binaries through
``go install`` or ``go build`` in a generated wrapper module (so ``GOPROXY``/``GOFLAGS`` apply, and the module and
build caches are the user's own). Layout under :func:`cache_dir`::

    maven/<group>/<artifact>/<version>/<artifact>-<version>[-<classifier>].jar   one jar (maven_jar)
    <name>/lib/*.jar                                                               a runtime classpath (maven_classpath)
    <name>/complete.json                                                           its coordinates, written last
    go/<binary>-<version>/<binary>                                                 a Go-built binary (go_binary,
                                                                                   go_wrapper_binaries: Kubernetes,
                                                                                   etcd)
    logs/<what>.log                                                                output of the last fetch or build

The package: ``cache.py`` (cache root, locks, atomic moves, tool runs with progress), ``maven.py`` (jars and
classpaths), ``go.py`` (``go install`` and wrapper-module builds). This module re-exports their public names.
Called by: the dev services (Kafka, Kubernetes, S3, Helm, example jobs) and ``flinkops.flink.jars``.

Invariants:

* A path these functions return is complete. A jar or binary is fetched into a temporary directory on the same
  filesystem and renamed into place (``os.replace``), so a crash or a concurrent reader never sees a torn file.
  A classpath directory counts only when ``complete.json`` exists and names the same coordinates; the marker is
  removed before the directory changes and written after it is whole.
* Concurrent callers (two test sessions, a CLI and a test) serialise on an ``fcntl`` lock per artifact (per
  module and version for a wrapper build), so a build of several minutes runs once, and the second caller finds
  it cached.
* A present artifact is returned without running ``mvn`` or ``go`` (no network, no startup cost).

Long operations report through ``progress`` (what is fetched or built, that it is cached for next time, and a
heartbeat while it runs). Failures raise :class:`ArtifactError` with the coordinates tried, what to install, and
the last lines of the tool's output (the full output stays in ``logs/``).
"""

from flinkops.artifacts.cache import ArtifactError, Progress, cache_dir, file_lock
from flinkops.artifacts.go import etcd_binary, go_binary, go_program, go_wrapper_binaries, kubernetes_binaries
from flinkops.artifacts.maven import maven_classpath, maven_jar, maven_versions, parse_coordinate, version_key

__all__ = [
    "ArtifactError",
    "Progress",
    "cache_dir",
    "etcd_binary",
    "file_lock",
    "go_binary",
    "go_program",
    "go_wrapper_binaries",
    "kubernetes_binaries",
    "maven_classpath",
    "maven_jar",
    "maven_versions",
    "parse_coordinate",
    "version_key",
]
