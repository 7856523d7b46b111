"""The local target's ``Provisioner``: what a deployment needs from outside Flink's distribution before a
cluster of local processes can start: optional plugins (S3 filesystems; a metric reporter's plugin the distribution
lacks), connectors (Kafka), S3 credentials for its processes, its job jar, and reachable storage.

Everything here runs *before* an action has any effect (the controller's preflight), so a missing bucket,
rejected credentials, an unreachable endpoint, a jar URI that 404s or a connector that cannot be fetched stops
a deploy or upgrade with ``status.error`` and an event while the running job, if any, keeps running.

Heavy downloads (plugin and connector jars) are fetched once through Maven into the user's cache
(``flinkops.artifacts``) and linked into each cluster, never copied into the repository or the state dir.

Called by: the controller through the ``Provisioner`` port (built by ``flinkops.wiring``), and the service
layer for storage access. ``PodProvisioner`` (``provisioning.pods``) reuses the storage and jar parts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from flinkops.api.flinkconf import PYTHON_DRIVER, checkpoint_dir, savepoint_dir
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, JobSpec
from flinkops.api.plugins import choose_plugins, requested_connectors, uses_s3
from flinkops.api.reporters import LOOPBACK_FACTORY, prometheus_reporters, reporters
from flinkops.api.secrets import LOCAL_SCHEMES, arg_references, config_references
from flinkops.errors import FlinkopsError, PermanentError
from flinkops.flink.config import RenderInputs, render_inputs
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.jars import connector_jar, manifest_entry_class, plugin_jar
from flinkops.flink.layout import ImageLayout, image_relative
from flinkops.flink.loopback import loopback_plugin_jar
from flinkops.ports import ClusterExtras, Resource, SnapshotStore
from flinkops.s3 import (
    SECRET_CONFIG_KEYS,
    DevS3,
    S3Access,
    check_bucket,
    download,
    flink_settings,
    is_s3_uri,
    resolve_s3_access,
    split_uri,
)
from flinkops.secrets import SecretResolver
from flinkops.settings import SOURCE_DIR_ANNOTATION, USRLIB_ANNOTATION

__all__ = [
    "ClusterExtras",
    "DataPlane",
    "LocalProvisioner",
    "entry_class_of",
    "image_jar",
    "is_python_jar",
    "local_jar",
    "usrlib_dir",
]

log = logging.getLogger("flinkops.controller")

#: Finds the S3 server that ``flinkops dev`` runs for this home (``None`` when there is none). Injected by the
#: wiring, so this adapter does not depend on ``flinkops.dev``.
DevS3Lookup = Callable[[], DevS3 | None]

_HA_DIR_KEY = "high-availability.storageDir"


class DataPlane:
    """Storage and jar access as seen from this machine: S3 settings (the deployment's, the environment's, or
    the ``flinkops dev`` server's), snapshot stores per configuration, and job jar fetching."""

    def __init__(
        self,
        home: Path,
        distribution: FlinkDistribution | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        dev_s3: DevS3Lookup | None = None,
        local_snapshots: SnapshotStore | None = None,
    ) -> None:
        self.home = home
        self.dist = distribution
        self.environ = os.environ if environ is None else environ
        self._dev_s3 = dev_s3
        self._local_snapshots = local_snapshots
        self._s3_stores: dict[S3Access, SnapshotStore] = {}  # one client per endpoint and credentials
        self.secrets = SecretResolver(self.environ)

    # ------------------------------------------------------------------ S3 access

    def dev_s3(self) -> DevS3 | None:
        """The running ``flinkops dev`` S3 server of this home, if any (read from its record, nothing started)."""
        if self._dev_s3 is None:
            return None
        try:
            return self._dev_s3()
        except (OSError, ValueError, FlinkopsError) as exc:
            log.debug("no dev S3 settings: %s", exc)
            return None

    def s3_access(self, config: Mapping[str, str]) -> S3Access:
        refs = config_references({k: v for k, v in config.items() if k in SECRET_CONFIG_KEYS})
        local = {k: ref for k, ref in refs.items() if ref.scheme in LOCAL_SCHEMES}
        if refs:  # S3 keys given as references: read with their values (others as if absent)
            config = {k: v for k, v in config.items() if k not in refs}
            config.update({k: self.secrets.resolve(ref) for k, ref in local.items()})
        return resolve_s3_access(config, self.environ, self.dev_s3())

    def secret_environment(self, config: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, str]:
        """The resolved values of the secret references in ``config`` and ``args``, by the variable each travels
        in to the launcher (``SecretRef.env_name``); raises ``SecretUnavailable`` naming one that cannot be read."""
        refs = [*config_references(config).values(), *arg_references(args).values()]
        return self.secrets.resolve_all(ref for ref in refs if ref.scheme in LOCAL_SCHEMES)

    def snapshot_store(self, config: Mapping[str, str]) -> SnapshotStore:
        """Checkpoint/savepoint storage as a deployment with ``config`` sees it: local paths, and S3 with the
        deployment's endpoint and credentials (the S3 side is set up only when an S3 path is asked about)."""
        from flinkops.snapshots.local import LocalSnapshotStore
        from flinkops.snapshots.routing import RoutingSnapshotStore
        from flinkops.snapshots.s3 import S3SnapshotStore

        def s3_store() -> SnapshotStore:
            access = self.s3_access(config)
            found = self._s3_stores.get(access)
            # setdefault: threads sharing this data plane (the operator's workers) end up with the same store
            return found if found is not None else self._s3_stores.setdefault(access, S3SnapshotStore(access))

        return RoutingSnapshotStore(self._local_snapshots or LocalSnapshotStore(), s3_store)

    def process_environment(self, config: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, str]:
        """The secret environment of a cluster's processes: S3 credentials, and the resolved secret references."""
        environment = self.secret_environment(config, args)
        if uses_s3(config, args):
            environment.update(flink_settings(self.s3_access(config))[1])
        return environment

    # ------------------------------------------------------------------ cluster additions

    def prepare_cluster(
        self, spec: FlinkDeploymentSpec, config: Mapping[str, str], args: Sequence[str] = ()
    ) -> ClusterExtras:
        """Plugins, connectors, S3 settings and credentials for a cluster running ``spec`` with ``config`` (the
        rendered configuration, S3 keys included), after checking that every S3 bucket it keeps state in
        exists and accepts those credentials. Fetches missing jars (cached); raises with the reason when
        something cannot be had."""
        if self.dist is None:
            raise PermanentError("no Flink distribution: plugins and connectors cannot be chosen")
        dist = self.dist
        args = list(args)
        choice = choose_plugins(spec, config, args)
        if choice.ambiguity:
            log.warning("%s", choice.ambiguity)
        plugins: dict[str, Path] = {}
        for name in choice.plugins:
            if (dist.plugins / name).is_dir():
                continue  # the distribution bundles it already
            try:
                plugins[name] = plugin_jar(name, dist.version)
            except FlinkopsError as exc:
                raise PermanentError(f"plugin {name} ({choice.reasons.get(name, 'requested')}): {exc}") from exc
        filesystems = bool(plugins)
        reporter_config: dict[str, str] = {}
        for reporter in sorted(reporters(config), key=lambda r: not r.prometheus):  # the loopback plugin first
            # Flink's distribution ships the reporters as plugins; one without them gets the jar from Maven.
            plugin = reporter.plugin
            if plugin is None or plugin in plugins:
                continue
            bundled = sorted((dist.plugins / plugin).glob("*.jar"))
            if bundled and not reporter.prometheus:
                continue
            try:
                jar = bundled[0] if bundled else plugin_jar(plugin, dist.version)
            except FlinkopsError as exc:
                raise PermanentError(
                    f"{reporter.key}: the Flink distribution at {dist.home} has no plugins/{plugin} and it could not "
                    f"be fetched: {exc}"
                ) from exc
            if not reporter.prometheus:
                plugins[plugin] = jar
                continue
            # Flink's reporter listens on every interface: locally the same reporter on 127.0.0.1 (flink.loopback).
            try:
                plugins[plugin] = loopback_plugin_jar(jar, sorted(dist.lib.glob("flink-dist*.jar")), dist.java)
            except FlinkopsError as exc:
                raise PermanentError(
                    f"{reporter.key}: flinkops serves Flink's Prometheus reporter on 127.0.0.1 only, with a reporter "
                    f"of its own that could not be built: {exc}"
                ) from exc
        for reporter in prometheus_reporters(config):
            reporter_config[reporter.option("factory.class")] = LOOPBACK_FACTORY
        lib_jars: list[Path] = []
        for connector in requested_connectors(spec.flink_configuration):  # a flinkops key: read from the spec
            try:
                lib_jars.append(connector_jar(connector, dist.version))
            except ValueError as exc:
                raise PermanentError(f"flinkops.connectors: {exc}") from exc
            except FlinkopsError as exc:
                raise PermanentError(f"connector {connector}: {exc}") from exc
        updates: dict[str, str] = {}
        environment: dict[str, str] = {}
        if uses_s3(config, args) or filesystems:
            access = self.s3_access(config)
            self._check_state_buckets(access, config)
            settings, environment = flink_settings(access)
            updates = {k: v for k, v in settings.items() if not str(config.get(k, "")).strip()}
        environment = {**environment, **self.secret_environment(config, args)}
        return ClusterExtras({**updates, **reporter_config}, environment, plugins, tuple(lib_jars))

    def without_secrets(self, config: Mapping[str, str]) -> dict[str, str]:
        """``config`` minus S3 keys and secrets: those reach the processes through their environment. A secret
        reference stays: it is not the secret, and the launcher passes its value to Flink (``api.secrets``)."""
        refs = config_references(config)
        return {k: v for k, v in config.items() if k not in SECRET_CONFIG_KEYS or k in refs}

    @staticmethod
    def _check_state_buckets(access: S3Access, config: Mapping[str, str]) -> None:
        """Every S3 bucket the deployment keeps state in (checkpoints, savepoints, HA) exists and accepts
        ``access``: found before anything starts, not by a JobManager failing at its first checkpoint."""
        uris = [u for u in (checkpoint_dir(config), savepoint_dir(config), config.get(_HA_DIR_KEY)) if is_s3_uri(u)]
        for bucket, uri in {split_uri(str(u))[0]: str(u) for u in uris}.items():
            log.debug("checking S3 bucket %s", bucket)
            check_bucket(access, uri)

    # ------------------------------------------------------------------ job jars

    def layout(self, usrlib: Path | None) -> ImageLayout | None:
        """The official image's ``/opt/flink`` on this machine for a job with ``usrlib`` (None without a local
        Flink distribution: in pods the image itself has that layout)."""
        return ImageLayout(self.dist, usrlib) if self.dist is not None else None

    def fetch_jar(self, uri: str, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None) -> Path:
        """A local file for job jar ``uri``: a path, ``local://``/``file://``, ``http(s)://`` or ``s3://``;
        ``/opt/flink/...`` means the official image's layout on this machine (``flink.layout``, ``usrlib`` for
        its ``usrlib/``, the YAML's directory ``base`` by default). Remote jars are downloaded afresh into
        ``<home>/jars/<hash of the URI>/`` (an object may change under the same URI; a half-downloaded file is
        never used)."""
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme in ("", "file", "local"):
            layout = self.layout(usrlib or base)
            if layout is not None and image_relative(uri) is not None:
                return image_jar(layout, uri)
            return local_jar(uri, base)
        name = Path(parsed.path).name or "job.jar"
        into = self.home / "jars" / hashlib.sha256(uri.encode()).hexdigest()[:16]
        into.mkdir(parents=True, exist_ok=True)
        target = into / name
        if is_s3_uri(uri):
            try:
                return download(self.s3_access(config), uri, target)
            except PermanentError as exc:
                raise PermanentError(f"spec.job.jarURI: {exc}") from exc
        if parsed.scheme in ("http", "https"):
            partial = target.with_name(target.name + ".partial")
            try:
                with urllib.request.urlopen(uri, timeout=60) as response, partial.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise PermanentError(f"spec.job.jarURI: could not download {uri}: {exc}") from exc
            partial.replace(target)
            return target
        raise PermanentError(
            f"spec.job.jarURI {uri!r}: scheme {parsed.scheme!r} is not supported (use a path, local://, file://, "
            "https:// or s3://)"
        )


class LocalProvisioner(DataPlane):
    """Clusters of processes on this machine: jars, plugins and connectors are fetched here, secrets go into the
    processes' environment, and state without a configured directory goes under the flinkops home."""

    def __init__(
        self,
        home: Path,
        distribution: FlinkDistribution | None,
        python_executable: str,
        *,
        dev_s3: DevS3Lookup | None = None,
        local_snapshots: SnapshotStore | None = None,
    ) -> None:
        super().__init__(home, distribution, dev_s3=dev_s3, local_snapshots=local_snapshots)
        self.python = python_executable

    @property
    def default_state_dirs(self) -> bool:
        return True

    @property
    def secret_schemes(self) -> frozenset[str]:
        return LOCAL_SCHEMES

    def render_inputs(self, deployment: FlinkDeployment) -> RenderInputs:
        version = self.dist.version if self.dist is not None else None
        return render_inputs(deployment, self.home, self.python, version)

    def working_dir(self, resource: Resource) -> Path | None:
        source = (resource.metadata.annotations or {}).get(SOURCE_DIR_ANNOTATION)
        return Path(source) if source else None

    def usrlib_dir(self, resource: Resource) -> Path | None:
        return usrlib_dir(resource)

    def job_jars(
        self, job: JobSpec, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None
    ) -> tuple[Path, ...]:
        # A PyFlink job names the flink-python jar, which the distribution already has on its classpath.
        if not job.jar_uri or (job.entry_class == PYTHON_DRIVER and is_python_jar(job.jar_uri)):
            return ()
        jar = self.fetch_jar(job.jar_uri, base, config, usrlib)
        if not (job.entry_class or "").strip():
            entry_class_of(jar)  # found now, not by a JobManager that dies at its start
        return (jar,)

    def job_args(self, args: Sequence[str], usrlib: Path | None) -> tuple[str, ...]:
        """``args`` with ``/opt/flink/...`` paths (``-py /opt/flink/usrlib/job.py``) replaced by local files."""
        layout = self.layout(usrlib)
        if layout is None:
            return tuple(args)
        try:
            mapped, _ = layout.map_args(list(args))
        except PermanentError as exc:
            raise PermanentError(f"spec.job.args: {exc}") from exc
        return mapped


def usrlib_dir(resource: Resource) -> Path | None:
    """The directory ``/opt/flink/usrlib/`` means for ``resource`` locally: its ``flinkops.io/usrlib``
    annotation (made absolute against the YAML's directory when applied), else the YAML's directory."""
    annotations = resource.metadata.annotations or {}
    chosen = annotations.get(USRLIB_ANNOTATION) or annotations.get(SOURCE_DIR_ANNOTATION)
    return Path(chosen) if chosen else None


def entry_class_of(jar: Path) -> str:
    """The entry class ``jar``'s manifest names; PermanentError naming ``spec.job.entryClass`` when it names none
    (Flink would start a JobManager that dies at once)."""
    try:
        found = manifest_entry_class(jar)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PermanentError(f"spec.job.jarURI: {jar} is not a readable jar ({exc})") from exc
    if not found:
        raise PermanentError(
            f"spec.job.entryClass is not set and the jar {jar} names no Main-Class in its manifest: set "
            "spec.job.entryClass to the class with the job's main method (or build the jar with a Main-Class)"
        )
    return found


def image_jar(layout: ImageLayout, uri: str) -> Path:
    """The local file of a job jar named inside the official image (``local:///opt/flink/...``)."""
    try:
        mapped = layout.map(uri)
    except FlinkopsError as exc:
        raise PermanentError(f"spec.job.jarURI: {exc}") from exc
    assert mapped is not None and mapped.path is not None
    log.info("spec.job.jarURI %s", mapped.line())
    if not mapped.path.is_file():
        raise PermanentError(f"spec.job.jarURI: {uri} is {mapped.path} on this machine, which does not exist")
    return mapped.path


def is_python_jar(uri: str) -> bool:
    """``uri`` names a flink-python jar: a PyFlink job's, which the distribution already has on its classpath."""
    return Path(urllib.parse.urlparse(uri).path).name.startswith("flink-python")


def local_jar(uri: str, base: Path | None) -> Path:
    """The file behind a local jar URI (relative paths resolve against ``base``, the YAML's directory)."""
    parsed = urllib.parse.urlparse(uri)
    path = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme in ("local", "file") else Path(uri)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise PermanentError(f"spec.job.jarURI: {path} does not exist on this machine")
    return path
