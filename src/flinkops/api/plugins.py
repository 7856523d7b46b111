"""Which optional Flink plugins and connectors a deployment needs, decided from its spec alone.

**Plugins.** Flink reaches object stores through filesystem plugins, each loaded from its own subdirectory of
the plugin dir. Two serve S3: ``s3-fs-presto`` (schemes ``s3://`` and ``s3p://``; Flink recommends it for
checkpoints) and ``s3-fs-hadoop`` (``s3://`` and ``s3a://``; the only one with the recoverable writer that
FileSink needs). When both are loaded, which one serves plain ``s3://`` depends on load order, so:

* An explicit list wins: ``flinkops.plugins`` (plugin directory names), or the convention of Flink's container
  images, the ``ENABLE_BUILT_IN_PLUGINS`` environment variable (``;``-separated jar names such as
  ``flink-s3-fs-presto-1.17.1.jar``), read from every pod template's containers and from
  ``containerized.{master,taskmanager}.env.ENABLE_BUILT_IN_PLUGINS``. Those plugins are enabled at the version of
  the Flink actually in use (the version in a jar name only says which image it came from).
* Otherwise the paths decide: ``s3p://`` needs presto, ``s3a://`` needs hadoop, and plain ``s3://`` needs
  hadoop when a job argument (a sink or source path) uses it and presto when only state directories (checkpoints,
  savepoints, HA) do. If both end up enabled while plain ``s3://`` is used, :attr:`PluginChoice.ambiguity`
  explains how to make it unambiguous.

**Connectors.** ``flinkops.connectors: kafka`` asks flinkops to put the Kafka SQL connector (the fat jar that
also serves DataStream jobs) that matches the running Flink version on the cluster classpath.

Called by: the controller (to fetch and enable them), lint, ``describe``. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir
from flinkops.api.loader import yaml_path

__all__ = [
    "CONNECTORS_KEY",
    "CONNECTOR_ARTIFACTS",
    "ENABLE_PLUGINS_ENV",
    "KAFKA_CONNECTOR_VERSIONS",
    "MAIN_CONTAINER",
    "PLUGINS_KEY",
    "S3_HADOOP",
    "S3_PRESTO",
    "PluginChoice",
    "choose_plugins",
    "connector_coordinates",
    "enabled_plugins",
    "plugin_env_declarations",
    "plugin_name",
    "plugin_names",
    "requested_connectors",
    "s3_paths",
    "uses_s3",
]

S3_PRESTO = "s3-fs-presto"
S3_HADOOP = "s3-fs-hadoop"
ENABLE_PLUGINS_ENV = "ENABLE_BUILT_IN_PLUGINS"
#: flinkops' own spelling of an explicit list: plugin directory names (``s3-fs-presto;s3-fs-hadoop``).
PLUGINS_KEY = "flinkops.plugins"
CONNECTORS_KEY = "flinkops.connectors"
_ENV_KEYS = (f"containerized.master.env.{ENABLE_PLUGINS_ENV}", f"containerized.taskmanager.env.{ENABLE_PLUGINS_ENV}")
_HA_DIR_KEY = "high-availability.storageDir"
_S3_URI = re.compile(r"\bs3[ap]?://[^\s,;'\"]+")
_PLUGIN_JAR = re.compile(r"^flink-(?P<name>[a-z0-9-]+?)(?:-\d+\.\d+[^/]*)?\.jar$")
#: The container of a Flink pod template that runs Flink (where the image's entrypoint reads the variable).
MAIN_CONTAINER = "flink-main-container"

#: The Kafka connector release built for each Flink minor version (the connector is released separately).
KAFKA_CONNECTOR_VERSIONS = {"2.0": "4.0.1-2.0", "2.1": "5.0.0-2.1", "2.2": "5.0.0-2.2", "2.3": "5.0.0-2.2"}
CONNECTOR_ARTIFACTS = {"kafka": "flink-sql-connector-kafka"}


@dataclass(frozen=True)
class PluginChoice:
    """The optional plugins to enable and why; ``ambiguity`` is set when plain ``s3://`` has two servers."""

    plugins: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)
    ambiguity: str | None = None
    explicit: bool = False


def plugin_name(jar: str) -> str | None:
    """``flink-s3-fs-presto-1.17.1.jar`` → ``s3-fs-presto``; None for a name that is not a Flink plugin jar."""
    match = _PLUGIN_JAR.match(jar.strip().rsplit("/", 1)[-1])
    return match.group("name") if match else None


def plugin_names(text: str) -> list[str]:
    """Plugin names in a ``;``/``,``-separated list of jar names (``flink-s3-fs-presto-1.17.1.jar``, the
    ``ENABLE_BUILT_IN_PLUGINS`` form) or plugin names (``s3-fs-presto``, the ``flinkops.plugins`` form)."""
    names: list[str] = []
    for item in (i.strip().lower() for i in re.split(r"[;,]", text)):
        name = plugin_name(item) if item.endswith(".jar") else item
        if name and name not in names:
            names.append(name)
    return names


def plugin_env_declarations(template: Any, base: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    """``(YAML path, value)`` of each ``ENABLE_BUILT_IN_PLUGINS`` on the main container of a pod template;
    ``base`` is the template's own path (for findings that point at the line)."""
    pod_spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    for c_index, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, Mapping) or container.get("name") != MAIN_CONTAINER:
            continue
        env = container.get("env")
        for e_index, variable in enumerate(env if isinstance(env, list) else []):
            if isinstance(variable, Mapping) and variable.get("name") == ENABLE_PLUGINS_ENV:
                path = yaml_path(*base, "spec", "containers", c_index, "env", e_index, "value")
                yield path, str(variable.get("value") or "")


def enabled_plugins(spec: Any, config: Mapping[str, str]) -> list[str]:
    """Every plugin listed in ``ENABLE_BUILT_IN_PLUGINS`` (any pod template's main container, or the
    containerized env keys) and in ``flinkops.plugins`` (a flinkops key, so read from the spec)."""
    values: list[str] = [config[key] for key in _ENV_KEYS if config.get(key, "").strip()]
    for part, base in ((spec, ()), (getattr(spec, "job_manager", None), ("jobManager",)),
                       (getattr(spec, "task_manager", None), ("taskManager",))):  # fmt: skip
        if part is not None:
            values.extend(v for _, v in plugin_env_declarations(getattr(part, "pod_template", None), base))
    own = {**config, **(getattr(spec, "flink_configuration", None) or {})}
    values.append(own.get(PLUGINS_KEY, ""))
    return list(dict.fromkeys(name for value in values for name in plugin_names(value)))


def s3_paths(config: Mapping[str, str], args: Iterable[str]) -> tuple[list[str], list[str]]:
    """(state paths, job-argument paths) that are S3 URIs."""
    state = [p for p in (checkpoint_dir(config), savepoint_dir(config), config.get(_HA_DIR_KEY)) if p]
    state = [p for p in state if _S3_URI.match(p.strip())]
    in_args = [m.group(0) for arg in args for m in _S3_URI.finditer(arg)]
    return state, in_args


def uses_s3(config: Mapping[str, str], args: Iterable[str] = ()) -> bool:
    """Whether a deployment with ``config`` and job ``args`` keeps state on or reads/writes S3."""
    state, in_args = s3_paths(config, args)
    return bool(state or in_args)


def choose_plugins(spec: Any, config: Mapping[str, str], args: Iterable[str] = ()) -> PluginChoice:
    """The optional plugins this deployment needs (see the module docstring for the rules)."""
    state, in_args = s3_paths(config, args)
    plain = [p for p in [*state, *in_args] if p.startswith("s3://")]
    explicit = enabled_plugins(spec, config)
    if explicit:
        names = tuple(explicit)
        listed = {n: f"{ENABLE_PLUGINS_ENV} lists it" for n in names}
        return PluginChoice(names, listed, _ambiguity(names, plain), explicit=True)
    reasons: dict[str, str] = {}
    for path in [*state, *in_args]:
        if path.startswith("s3p://"):
            reasons.setdefault(S3_PRESTO, f"{path} uses s3p://")
        elif path.startswith("s3a://"):
            reasons.setdefault(S3_HADOOP, f"{path} uses s3a://")
    for path in in_args:
        if path.startswith("s3://"):
            reasons.setdefault(S3_HADOOP, f"job argument {path} (FileSink needs the Hadoop S3 plugin)")
    for path in state:
        if path.startswith("s3://") and S3_HADOOP not in reasons:
            reasons.setdefault(S3_PRESTO, f"state directory {path} (Presto S3 is Flink's choice for checkpoints)")
    names = tuple(sorted(reasons))
    return PluginChoice(names, reasons, _ambiguity(names, plain))


def _ambiguity(names: tuple[str, ...], plain: list[str]) -> str | None:
    if S3_PRESTO in names and S3_HADOOP in names and plain:
        return (
            f"both S3 plugins are enabled and {plain[0]} uses plain s3://, which either may serve: use s3p:// for "
            "checkpoint/savepoint/HA directories and s3a:// for sink and source paths"
        )
    return None


def requested_connectors(config: Mapping[str, str]) -> list[str]:
    """The connector names listed in ``flinkops.connectors`` (comma or semicolon separated, lower case)."""
    raw = config.get(CONNECTORS_KEY, "")
    return [c.strip().lower() for c in re.split(r"[,;]", raw) if c.strip()]


def connector_coordinates(name: str, flink_version: str) -> tuple[str, str, str]:
    """Maven (group, artifact, version) of connector ``name`` for ``flink_version``; ValueError if unknown."""
    artifact = CONNECTOR_ARTIFACTS.get(name)
    if artifact is None:
        raise ValueError(f"unknown connector {name!r} (known: {', '.join(sorted(CONNECTOR_ARTIFACTS))})")
    minor = ".".join(flink_version.split(".")[:2])
    version = KAFKA_CONNECTOR_VERSIONS.get(minor)
    if version is None:
        raise ValueError(
            f"no {name} connector release is known for Flink {flink_version} "
            f"(known: {', '.join(sorted(KAFKA_CONNECTOR_VERSIONS))})"
        )
    return "org.apache.flink", artifact, version
