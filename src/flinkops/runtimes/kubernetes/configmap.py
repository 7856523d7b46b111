"""The ConfigMap of a Flink cluster on Kubernetes: the Flink configuration file and the log configuration.

ConfigMap ``flink-config-<name>`` holds the Flink configuration file (``config.yaml``; ``flink-conf.yaml`` for
Flink <= 1.18, which does not read the new file: :func:`config_file_name`), ``log4j-console.properties``
(``spec.logConfiguration`` or :data:`DEFAULT_LOG4J_CONSOLE`, a console-plus-file default),
``logback-console.xml`` when given, and in native mode the TaskManager pod template file that Flink's resource
manager reads (``kubernetes.pod-template-file.taskmanager``). The pods mount it as their configuration
directory.

Called by: ``render.render_cluster``. Invariants: pure; the file holds exactly the render context's
configuration (which carries no secrets), keys sorted, so the same spec always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from flinkops.api.models import FlinkVersion
from flinkops.runtimes.kubernetes.context import RenderContext, object_metadata
from flinkops.runtimes.kubernetes.names import TASKMANAGER_POD_TEMPLATE_FILE, Manifest, child_names

__all__ = ["DEFAULT_LOG4J_CONSOLE", "LOG4J_FILE", "LOGBACK_FILE", "config_file_name", "config_map"]

LOG4J_FILE = "log4j-console.properties"
LOGBACK_FILE = "logback-console.xml"
# Flink 1.19 started reading config.yaml; older versions read only flink-conf.yaml (flat "key: value" lines).
_LEGACY_CONF_VERSIONS = frozenset(
    {
        FlinkVersion.v1_13,
        FlinkVersion.v1_14,
        FlinkVersion.v1_15,
        FlinkVersion.v1_16,
        FlinkVersion.v1_17,
        FlinkVersion.v1_18,
    }
)

# A console appender for `kubectl logs` plus the rolling file Flink's web UI shows (flink-console.sh sets
# log.file); levels quiet the chattiest libraries the way Flink's own default does.
DEFAULT_LOG4J_CONSOLE = """\
monitorInterval = 30
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
rootLogger.appenderRef.rolling.ref = RollingFileAppender
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = INFO
logger.shaded_zookeeper.name = org.apache.flink.shaded.zookeeper3
logger.shaded_zookeeper.level = INFO
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.name = RollingFileAppender
appender.rolling.type = RollingFile
appender.rolling.append = true
appender.rolling.fileName = ${sys:log.file}
appender.rolling.filePattern = ${sys:log.file}.%i
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 100MB
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = ${env:MAX_LOG_FILE_NUMBER:-10}
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
"""


def config_file_name(flink_version: FlinkVersion | None) -> str:
    """The configuration file the Flink version reads: ``config.yaml`` from 1.19, ``flink-conf.yaml`` before."""
    return "flink-conf.yaml" if flink_version in _LEGACY_CONF_VERSIONS else "config.yaml"


def _config_file(ctx: RenderContext) -> str:
    if config_file_name(ctx.spec.flink_version) == "flink-conf.yaml":
        # Flink <= 1.18 reads "key: value" lines literally (no YAML quoting; lists are ';'-separated, items
        # quoted when they contain the separator).
        lines = [f"{k}: {v}" for k, v in sorted(ctx.config.items())]
        lines += [f"{k}: {';'.join(_legacy_item(i) for i in v)}" for k, v in sorted(ctx.lists.items())]
        return "\n".join(lines) + "\n"
    document: dict[str, Any] = dict(ctx.config)
    document.update(ctx.lists)
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _legacy_item(item: str) -> str:
    return '"' + item.replace('"', '""') + '"' if any(c in item for c in ";'\"") else item


def config_map(
    ctx: RenderContext, owner: Mapping[str, Any], generation: int, tm_template: Mapping[str, Any] | None
) -> Manifest:
    """The cluster's ConfigMap; ``tm_template`` is the native TaskManager pod template (None in standalone)."""
    logs = dict(ctx.spec.log_configuration or {})
    data = {
        config_file_name(ctx.spec.flink_version): _config_file(ctx),
        LOG4J_FILE: logs.get(LOG4J_FILE) or DEFAULT_LOG4J_CONSOLE,
    }
    if logs.get(LOGBACK_FILE):
        data[LOGBACK_FILE] = logs[LOGBACK_FILE]
    if tm_template is not None:
        data[TASKMANAGER_POD_TEMPLATE_FILE] = yaml.safe_dump(dict(tm_template), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_metadata(ctx, child_names(ctx.name, ctx.mode).config_map, owner, generation),
        "data": data,
    }
