"""Maven artifacts, fetched once through the user's own ``mvn`` and cached: one jar, or a whole classpath.

:func:`maven_jar` copies one jar (no dependencies) to ``cache_dir()/maven/<group>/<artifact>/<version>/``,
trying fallback versions in order; :func:`maven_classpath` resolves coordinates with all their compile- and
runtime-scope dependencies into ``cache_dir()/<name>/lib`` through a generated pom. ``mvn`` runs in an empty
scratch directory (no pom of the caller's is picked up) with the user's settings, mirrors and local repository.

Called by: ``flinkops.flink.jars`` (connector and plugin jars) and the dev Kafka broker, through
``flinkops.artifacts``. Invariants: a returned path is complete (a jar lands by rename; a classpath counts only
when ``complete.json`` names the same coordinates, written after the directory is whole and removed before it
changes); a cached artifact is returned without running Maven; one lock per artifact (per classpath name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from flinkops.artifacts.cache import (
    ArtifactError,
    Progress,
    cache_dir,
    file_lock,
    run_tool,
    say,
    scratch,
    write_atomic,
)

__all__ = ["local_repository", "maven_classpath", "maven_jar", "maven_versions", "parse_coordinate", "version_key"]

_MVN_HINT = "Maven (`mvn`, 3.6 or newer, with a JDK) must be installed and able to reach a Maven repository"


def parse_coordinate(coordinate: str) -> tuple[str, str, str, str, str | None]:
    """Split ``group:artifact:version[:type[:classifier]]`` (Maven's ``-Dartifact`` form) into its parts;
    the type defaults to ``jar``. Raises ArtifactError for anything else."""
    parts = coordinate.strip().split(":")
    if len(parts) not in (3, 4, 5) or not all(parts):
        raise ArtifactError(f"bad Maven coordinate {coordinate!r}: expected group:artifact:version[:type[:classifier]]")
    group, artifact, version = parts[:3]
    kind = parts[3] if len(parts) > 3 else "jar"
    classifier = parts[4] if len(parts) > 4 else None
    return group, artifact, version, kind, classifier


def maven_jar(
    group: str,
    artifact: str,
    version: str,
    *,
    classifier: str | None = None,
    fallback_versions: Sequence[str] = (),
    progress: Progress | None = None,
) -> Path:
    """One jar (no dependencies), cached under ``cache_dir()/maven/``.

    ``version`` is tried first, then each of ``fallback_versions`` in order (for a release that Maven Central
    does not carry yet, say). Any of them already cached is returned at once, in that order of preference.
    """
    versions = [version, *(v for v in fallback_versions if v != version)]
    targets = {v: _jar_path(group, artifact, v, classifier) for v in versions}
    for v in versions:
        if targets[v].is_file():
            return targets[v]
    failures: list[str] = []
    for v in versions:
        spec = f"{group}:{artifact}:{v}" + (f":jar:{classifier}" if classifier else "")
        target = targets[v]
        artifact_dir = target.parent.parent  # one lock and scratch area per artifact, across its versions
        with file_lock(artifact_dir / ".lock"):
            if target.is_file():  # another process fetched it while we waited
                return target
            say(progress, f"fetching {spec} with Maven (cached in {target.parent} for next time)")
            started = time.monotonic()
            with scratch(artifact_dir) as tmp:
                out = tmp / "out"
                ok, tail = _run_mvn(
                    [
                        "dependency:copy",
                        f"-Dartifact={spec}",
                        f"-DoutputDirectory={out}",
                        "-Dmdep.overWriteReleases=true",
                    ],
                    cwd=tmp,  # an empty directory: no pom.xml of the caller's may be picked up
                    log_name=f"maven-{artifact}-{v}",
                    what=f"fetching {spec}",
                    progress=progress,
                )
                jars = sorted(out.glob("*.jar")) if ok else []
                if ok and jars:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(jars[0], target)
                    say(progress, f"fetched {target.name} in {time.monotonic() - started:.0f}s")
                    return target
                failures.append(f"{spec}: " + (tail or "Maven finished but wrote no jar"))
    tried = ", ".join(f"{group}:{artifact}:{v}" + (f" ({classifier})" if classifier else "") for v in versions)
    raise ArtifactError(f"could not fetch {tried} with Maven. {_MVN_HINT}. Maven said:\n" + "\n\n".join(failures))


def maven_versions(group: str, artifact: str, *, progress: Progress | None = None) -> list[str]:
    """The versions of ``group:artifact`` that the user's Maven repositories publish, as their metadata lists them
    (oldest first). One ``mvn`` run on a generated pom that asks for any version (``[0,)``, no dependencies):
    resolving that range makes Maven download the artifact's ``maven-metadata`` into the user's local repository,
    where it is read. Whether the chosen version then resolves does not matter here. ArtifactError when no
    metadata could be had (``mvn`` missing, repository unreachable, no such artifact)."""
    say(progress, f"asking Maven which versions of {group}:{artifact} are published")
    root = cache_dir() / "maven-metadata"
    with scratch(root) as tmp:
        (tmp / "pom.xml").write_text(_pom("versions", [(group, artifact, "[0,)", "jar", None)], transitive=False))
        # -U: metadata cached by an earlier run may be older than the release being looked for
        _ok, tail = _run_mvn(
            ["-U", "dependency:list", "-DexcludeTransitive=true"],
            cwd=tmp,
            log_name=f"maven-versions-{artifact}",
            what=f"listing the versions of {group}:{artifact}",
            progress=progress,
        )
    versions: list[str] = []
    folder = local_repository() / Path(*group.split(".")) / artifact
    for metadata in sorted(folder.glob("maven-metadata*.xml")):
        try:
            tree = ElementTree.parse(metadata)
        except (OSError, ElementTree.ParseError):
            continue
        versions += [v.text.strip() for v in tree.iterfind("./versioning/versions/version") if v.text]
    if not versions:
        raise ArtifactError(
            f"could not list the versions of {group}:{artifact} with Maven (no metadata in {folder}). "
            f"{_MVN_HINT}. Maven said:\n{tail or 'nothing'}"
        )
    return sorted(set(versions), key=version_key)


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """A sort key for release numbers such as ``1.20.0`` and ``2.3.0`` (numbers compare as numbers)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", version))


def local_repository() -> Path:
    """The user's local Maven repository: ``<localRepository>`` of ``~/.m2/settings.xml``, else
    ``~/.m2/repository`` (Maven's own default)."""
    settings = Path.home() / ".m2" / "settings.xml"
    try:
        root = ElementTree.parse(settings).getroot()
    except (OSError, ElementTree.ParseError):
        root = None
    if root is not None:
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == "localRepository" and (element.text or "").strip():
                text = element.text.strip().replace("${user.home}", str(Path.home()))  # type: ignore[union-attr]
                return Path(text).expanduser()
    return Path.home() / ".m2" / "repository"


def _jar_path(group: str, artifact: str, version: str, classifier: str | None) -> Path:
    name = f"{artifact}-{version}" + (f"-{classifier}" if classifier else "") + ".jar"
    return cache_dir() / "maven" / group / artifact / version / name


def maven_classpath(name: str, coordinates: Sequence[str], *, progress: Progress | None = None) -> Path:
    """A directory ``cache_dir()/<name>/lib`` holding ``coordinates`` and all their compile- and runtime-scope
    dependencies (Maven resolves versions as for a project that declares these dependencies); use it as
    ``-cp '<dir>/*'``. Rebuilt when ``coordinates`` differ from the ones it was built from."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ArtifactError(f"bad classpath name {name!r}: use letters, digits, '.', '_' and '-'")
    if not coordinates:
        raise ArtifactError(f"classpath {name!r}: no coordinates given")
    wanted = [c.strip() for c in coordinates]
    parsed = [parse_coordinate(c) for c in wanted]
    root = cache_dir() / name
    lib, marker = root / "lib", root / "complete.json"
    if _classpath_complete(marker, wanted) and lib.is_dir():
        return lib
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock"):
        if _classpath_complete(marker, wanted) and lib.is_dir():
            return lib
        say(
            progress,
            f"fetching {', '.join(wanted)} and their dependencies with Maven (once; cached in {lib} for next time)",
        )
        started = time.monotonic()
        with scratch(root) as tmp:
            (tmp / "pom.xml").write_text(_pom(name, parsed))
            ok, tail = _run_mvn(
                ["dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={tmp / 'lib'}"],
                cwd=tmp,
                log_name=f"maven-{name}",
                what=f"fetching the {name} classpath",
                progress=progress,
            )
            jars = sorted((tmp / "lib").glob("*.jar")) if ok else []
            if not ok or not jars:
                raise ArtifactError(
                    f"could not fetch the {name} classpath ({', '.join(wanted)}) with Maven. {_MVN_HINT}. "
                    f"Maven said:\n{tail or 'it finished but copied no jar'}"
                )
            marker.unlink(missing_ok=True)
            if lib.exists():
                old = root / f".old-{os.getpid()}-{time.monotonic_ns()}"
                os.replace(lib, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp / "lib", lib)
        write_atomic(marker, json.dumps({"coordinates": wanted, "jars": len(jars)}, indent=1) + "\n")
        say(progress, f"fetched {len(jars)} jars for {name} in {time.monotonic() - started:.0f}s")
    return lib


def _run_mvn(goal: list[str], *, cwd: Path, log_name: str, what: str, progress: Progress | None) -> tuple[bool, str]:
    """:func:`run_tool` for ``mvn`` (quiet, batch mode, no colours) with ``goal`` and its properties, in the
    user's own environment; a missing ``mvn`` is reported with what to install."""
    return run_tool(
        ["mvn", "-q", "-B", "-Dstyle.color=never", *goal],
        cwd=cwd,
        env=None,
        log_name=log_name,
        what=what,
        progress=progress,
        missing_hint=_MVN_HINT,
    )


def _classpath_complete(marker: Path, wanted: list[str]) -> bool:
    try:
        return bool(json.loads(marker.read_text()).get("coordinates") == wanted)
    except (OSError, ValueError, AttributeError):
        return False


def _pom(name: str, parsed: Sequence[tuple[str, str, str, str, str | None]], *, transitive: bool = True) -> str:
    """A pom that depends on ``parsed``; without ``transitive`` each dependency excludes all of its own."""
    deps = []
    for group, artifact, version, kind, classifier in parsed:
        fields = [("groupId", group), ("artifactId", artifact), ("version", version)]
        if kind != "jar":
            fields.append(("type", kind))
        if classifier:
            fields.append(("classifier", classifier))
        inner = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields)
        if not transitive:
            inner += "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
        deps.append(f"    <dependency>{inner}</dependency>\n")
    return (
        "<project>\n"
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>flinkops.local</groupId><artifactId>{escape(name)}</artifactId><version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{''.join(deps)}  </dependencies>\n"
        "</project>\n"
    )
