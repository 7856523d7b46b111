"""The JVM options Flink needs on Java 17, per Flink version: the one list both runtimes start JVMs with.

Java 17 closes the JDK's internals to reflection; Flink (Kryo, its memory manager, RPC) reaches into
``java.base`` and a few other modules, and without ``--add-opens``/``--add-exports`` a job fails with
``InaccessibleObjectException`` (``java.util`` not opened, for one). Flink's own distribution ships the flags in
its default configuration file, but on Kubernetes that file is replaced by the ConfigMap flinkops renders, and the
reference operator supplies them per Flink version from its default configuration
(``kubernetes.operator.default-configuration.flink-version.<v>.env.java...``). :data:`JAVA_MODULE_OPTIONS` is the
union of both lists (Flink 2.x's distribution and the reference operator's); :func:`with_module_options` puts it
where the version reads it, merged with what the user configured, never replacing it:

* Flink 1.19 and later: ``env.java.default-opts.all``, the administrators' options Flink's scripts put before
  ``env.java.opts.all`` (the user's own ``env.java.default-opts.all`` is kept after ours, without repeats);
* Flink 1.18 (the first with Java 17 support, which has no ``default-opts``): ``env.java.opts.all``, ours first,
  then the user's;
* older versions (Java 11 images): nothing.

A version that is not known (no ``flinkVersion``, an image of unknown age) is taken as the newest.

Called by: ``flink.config.render_flink_config`` for both targets (locally with the distribution's version, on
Kubernetes with the spec's ``flinkVersion``); the local launcher and Flink's scripts in the pods read the keys.
Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flinkops.api.models import FlinkVersion

__all__ = [
    "DEFAULT_OPTS_KEY",
    "JAVA_MODULE_OPTIONS",
    "OPTS_KEY",
    "module_options_key",
    "with_module_options",
]

DEFAULT_OPTS_KEY = "env.java.default-opts.all"
OPTS_KEY = "env.java.opts.all"

#: What Flink reaches into on Java 17: Flink's distribution list plus ``sun.net.util``, which the reference
#: operator adds. ``jdk.compiler`` is missing from JRE-only images; the JVM then warns once and goes on.
JAVA_MODULE_OPTIONS: tuple[str, ...] = (
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
)

_VERSION = re.compile(r"v?(\d+)[._](\d+)")


def _major_minor(version: FlinkVersion | str | None) -> tuple[int, int] | None:
    """``v1_18``, ``1.18``, ``2.2.1`` → (1, 18) / (2, 2); None when unknown or unreadable."""
    if version is None:
        return None
    match = _VERSION.match(str(version.value if isinstance(version, FlinkVersion) else version).strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def module_options_key(version: FlinkVersion | str | None) -> str | None:
    """The key the module options go to for ``version`` (see the module docstring); None below Flink 1.18."""
    parsed = _major_minor(version)
    if parsed is None or parsed >= (1, 19):
        return DEFAULT_OPTS_KEY
    return OPTS_KEY if parsed == (1, 18) else None


def with_module_options(config: Mapping[str, str], version: FlinkVersion | str | None) -> dict[str, str]:
    """``config`` with :data:`JAVA_MODULE_OPTIONS` merged into the key ``version`` reads, before the value the
    configuration already has there (options it already lists are not repeated)."""
    result = dict(config)
    key = module_options_key(version)
    if key is None:
        return result
    current = result.get(key, "").strip()
    present = set(current.split())
    ours = [option for option in JAVA_MODULE_OPTIONS if option not in present]
    result[key] = " ".join([*ours, current]).strip()
    return result
