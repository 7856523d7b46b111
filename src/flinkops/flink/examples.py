"""Flink's example jobs as the official image carries them (``/opt/flink/examples/streaming/WordCount.jar``), made
on this machine from the example artifacts that Flink publishes to Maven, once, and cached.

The ``apache-flink`` wheel ships no example jars, and the jars of the image's ``examples/`` directory are not
published as such: ``StateMachineExample.jar`` is built by a module that is never deployed, and some releases
publish no examples at all (``flink-examples-streaming`` 2.0.x to 2.2.x, for one). What every published release
has is the plain ``flink-examples-streaming`` jar, which holds the classes of every streaming example. So each
image jar is made from it: that jar's classes with a manifest whose ``Main-Class`` is the example's (as the
image's jar has), from the published release nearest to the local Flink that runs on it (:func:`nearest_release`:
the same major version; the local release, else the newest older one, else the oldest newer one). The table
examples (``examples/table/StreamSQLExample.jar`` ...) are made the same way from ``flink-examples-table_2.12``.

``EXAMPLES`` maps the image's names to their artifact and main class. Layout of the cache::

    flink-examples/<local Flink version>/<streaming|batch|table>/<Name>.jar  the jar the image path resolves to
    flink-examples/<local Flink version>/<streaming|batch|table>/<Name>.json which release it was made from
    flink-examples/<local Flink version>/release-<artifact>.json          the release chosen for that artifact

Called by: ``flink.layout`` (``local:///opt/flink/examples/...`` in a job). Invariants: a returned jar is whole
(written aside and renamed into place, under a lock per local version); a cached jar is returned without Maven.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flinkops.errors import PermanentError

__all__ = ["EXAMPLES", "ExampleJar", "ExampleSource", "cached_example", "example_jar", "nearest_release"]

log = logging.getLogger("flinkops.controller")

_GROUP = "org.apache.flink"
_STREAMING = "flink-examples-streaming"
_BATCH = "flink-examples-batch"
#: The table examples' module keeps a Scala suffix in its artifact id (its planner dependency has one), in 2.x too.
_TABLE = "flink-examples-table_2.12"
_S = "org.apache.flink.streaming.examples."
_T = "org.apache.flink.table.examples.java."


@dataclass(frozen=True)
class ExampleJar:
    """One jar of the image's ``examples/`` directory: the artifact holding its classes, and its main class."""

    artifact: str
    main_class: str


#: The image's ``examples/`` jars (path under ``/opt/flink/examples/``) this machine can make.
EXAMPLES: dict[str, ExampleJar] = {
    "streaming/StateMachineExample.jar": ExampleJar(_STREAMING, _S + "statemachine.StateMachineExample"),
    "streaming/TopSpeedWindowing.jar": ExampleJar(_STREAMING, _S + "windowing.TopSpeedWindowing"),
    "streaming/SessionWindowing.jar": ExampleJar(_STREAMING, _S + "windowing.SessionWindowing"),
    "streaming/WordCount.jar": ExampleJar(_STREAMING, _S + "wordcount.WordCount"),
    "streaming/WindowJoin.jar": ExampleJar(_STREAMING, _S + "join.WindowJoin"),
    "streaming/SocketWindowWordCount.jar": ExampleJar(_STREAMING, _S + "socket.SocketWindowWordCount"),
    "streaming/AsyncIO.jar": ExampleJar(_STREAMING, _S + "async.AsyncIOExample"),
    "batch/WordCount.jar": ExampleJar(_BATCH, "org.apache.flink.examples.java.wordcount.WordCount"),
    # The image's examples/table/ jars: one per execution of the module's jar plugin (its published pom), each
    # named by its id and holding one program. TemporalJoinSQLExample is in the artifact but in no image jar.
    "table/GettingStartedExample.jar": ExampleJar(_TABLE, _T + "basics.GettingStartedExample"),
    "table/UpdatingTopCityExample.jar": ExampleJar(_TABLE, _T + "basics.UpdatingTopCityExample"),
    "table/StreamSQLExample.jar": ExampleJar(_TABLE, _T + "basics.StreamSQLExample"),
    "table/StreamWindowSQLExample.jar": ExampleJar(_TABLE, _T + "basics.StreamWindowSQLExample"),
    "table/WordCountSQLExample.jar": ExampleJar(_TABLE, _T + "basics.WordCountSQLExample"),
    "table/ChangelogSocketExample.jar": ExampleJar(_TABLE, _T + "connectors.ChangelogSocketExample"),
    "table/AdvancedFunctionsExample.jar": ExampleJar(_TABLE, _T + "functions.AdvancedFunctionsExample"),
}


@dataclass(frozen=True)
class ExampleSource:
    """An example jar made on this machine, and where it came from."""

    path: Path
    artifact: str
    #: the published release its classes come from (may differ from the local Flink's version)
    release: str
    main_class: str

    def describe(self, flink_version: str) -> str:
        differs = "" if self.release == flink_version else f"; {flink_version} is not published, nearest release"
        return f"{self.path} (made from {self.artifact} {self.release}{differs}; Main-Class {self.main_class})"


def nearest_release(local: str, published: Sequence[str]) -> str | None:
    """The published release that runs on Flink ``local``: one of the same major version, ``local`` itself,
    else the newest older one (Flink keeps its public API within a major version), else the oldest newer one.
    None when the major version has no release at all."""
    from flinkops.artifacts import version_key

    major = local.split(".")[0]
    same = sorted((v for v in published if v.split(".")[0] == major and _is_release(v)), key=version_key)
    if local in same:
        return local
    older = [v for v in same if version_key(v) < version_key(local)]
    newer = [v for v in same if version_key(v) > version_key(local)]
    return older[-1] if older else (newer[0] if newer else None)


def _is_release(version: str) -> bool:
    return all(part.isdigit() for part in version.split("."))


def _cache_root(flink_version: str) -> Path:
    from flinkops.artifacts import cache_dir

    return cache_dir() / "flink-examples" / flink_version


def known(name: str) -> ExampleJar:
    """The example jar at ``examples/<name>``; PermanentError listing the known ones otherwise."""
    found = EXAMPLES.get(name)
    if found is None:
        names = ", ".join(f"/opt/flink/examples/{n}" for n in EXAMPLES)
        raise PermanentError(
            f"/opt/flink/examples/{name} is not an example jar flinkops can make on this machine (it knows {names}); "
            "put the jar in the usrlib directory and name it local:///opt/flink/usrlib/<jar>"
        )
    return found


def cached_example(name: str, flink_version: str) -> ExampleSource | None:
    """The example jar ``examples/<name>`` if it was made already (nothing is fetched)."""
    example = known(name)
    jar = _cache_root(flink_version) / name
    try:
        record = json.loads(jar.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if not jar.is_file() or not isinstance(record, dict):
        return None
    return ExampleSource(jar, example.artifact, str(record.get("release", "?")), example.main_class)


def example_jar(
    name: str,
    flink_version: str,
    progress: Callable[[str], None] | None = None,
    *,
    versions: Callable[[str, str], list[str]] | None = None,
    fetch: Callable[[str, str, str], Path] | None = None,
) -> ExampleSource:
    """The image's ``examples/<name>`` (``streaming/StateMachineExample.jar``) for Flink ``flink_version``: made
    once from the nearest published release and cached. ``versions`` and ``fetch`` (Maven by default) list an
    artifact's published versions and fetch one jar. PermanentError when no release runs on this Flink."""
    from flinkops.artifacts import file_lock, maven_jar, maven_versions
    from flinkops.artifacts.cache import scratch

    example = known(name)
    found = cached_example(name, flink_version)
    if found is not None:
        return found
    root = _cache_root(flink_version)
    list_versions = versions or (lambda group, artifact: maven_versions(group, artifact, progress=progress))
    fetch_jar = fetch or (lambda group, artifact, version: maven_jar(group, artifact, version, progress=progress))
    with file_lock(root / ".lock"):
        found = cached_example(name, flink_version)
        if found is not None:
            return found
        release = _release(root, example.artifact, flink_version, list_versions)
        plain = fetch_jar(_GROUP, example.artifact, release)
        target = root / name
        with scratch(root) as tmp:
            made = tmp / target.name
            _with_main_class(plain, made, example.main_class)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(made, target)
        record = {
            "artifact": f"{_GROUP}:{example.artifact}:{release}",
            "release": release,
            "main_class": example.main_class,
        }
        target.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    source = ExampleSource(target, example.artifact, release, example.main_class)
    message = f"/opt/flink/examples/{name} on Flink {flink_version}: {source.describe(flink_version)}"
    log.info("%s", message)
    if progress is not None:
        progress(message)
    return source


def _release(root: Path, artifact: str, flink_version: str, versions: Callable[[str, str], list[str]]) -> str:
    """The release of ``artifact`` to use with Flink ``flink_version`` (chosen once, then read from the cache)."""
    record = root / f"release-{artifact}.json"
    try:
        chosen = json.loads(record.read_text()).get("release")
        if isinstance(chosen, str) and chosen:
            return chosen
    except (OSError, ValueError, AttributeError):
        pass
    published = versions(_GROUP, artifact)
    release = nearest_release(flink_version, published)
    if release is None:
        hint = (
            " (the DataSet API of the batch examples was removed in Flink 2.0: use "
            "local:///opt/flink/examples/streaming/WordCount.jar, which runs in batch mode with --execution-mode BATCH)"
            if artifact == _BATCH
            else ""
        )
        raise PermanentError(
            f"no published release of {_GROUP}:{artifact} runs on the local Flink {flink_version} "
            f"(published: {', '.join(published) or 'none'}){hint}"
        )
    root.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"release": release, "published": list(published)}, indent=1) + "\n")
    return release


def _with_main_class(source: Path, target: Path, main_class: str) -> None:
    """``source``'s entries with a manifest naming ``main_class`` (its own manifest and signatures dropped)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\r\nMain-Class: {main_class}\r\n\r\n")
        for info in src.infolist():
            upper = info.filename.upper()
            if upper == "META-INF/MANIFEST.MF" or (
                upper.startswith("META-INF/") and upper.endswith((".SF", ".RSA", ".DSA", ".EC"))
            ):
                continue
            out.writestr(info, src.read(info.filename))
