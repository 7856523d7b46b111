"""How the local runtime starts one Flink process: the ``java`` command line built here, or Flink's scripts.

The distribution's ``jobmanager.sh`` / ``standalone-job.sh`` / ``taskmanager.sh start-foreground`` run several
helper JVMs before the real one (configuration parsing twice, the Java version, BashJavaUtils for the memory
flags): seconds per process on a small machine. The default here (``direct``) does what they do in Python and
execs one JVM, in the same shape as ``flink-console.sh``::

    java $JVM_ARGS <memory flags> <java opts> [class-data sharing] <log settings> -classpath <lib jars, flink-dist
         last> <main class> <arguments in the scripts' order: --configDir, -D memory properties, -D ports, job>

- memory flags and ``-D`` memory properties: ``flink/memory.py`` (what BashJavaUtils prints);
- java opts: ``-XX:+IgnoreUnrecognizedVMOptions``, ``env.java.default-opts.all``, ``env.java.opts.all`` (or the
  deprecated ``env.java.opts``), ``-Djava.security.manager=allow`` on Java > 17, then the role's
  ``env.java.default-opts.<role>`` and ``env.java.opts.<role>``; ``$VAR``/``${FLINK_LOG_PREFIX}`` expanded;
- environment: what the scripts export (``FLINK_CONF_DIR``, ``FLINK_LIB_DIR``, ``FLINK_PLUGINS_DIR``,
  ``FLINK_BIN_DIR``, ``FLINK_OPT_DIR``, ``ROOT_LOG_LEVEL``, ``MAX_LOG_FILE_NUMBER``, ``JAVA_HOME`` from
  ``env.java.home``) and ``FLINK_INHERITED_LOGS`` naming the computed parameters (the process logs it at start);
- class-data sharing: ``cds.py``;
- secret references (``api.secrets``): a ``flinkConfiguration`` value ``${secret:...}`` stays a reference in
  ``conf/config.yaml``; its value, resolved by the provisioner and handed over in the process environment as
  ``FLINKOPS_SECRET_<digest>``, is passed as one ``-Dkey=value`` program argument (a dynamic property overrides the
  file) and a job argument ``--name=${secret:...}`` gets its value in place. Flink masks both in its log (the key or
  the argument names a sensitive word: validation allows no other place). The ``FLINKOPS_SECRET_*`` variables are
  removed from the JVM's environment, and so are the controller's Vault tokens (``VAULT_TOKEN``, ``BAO_TOKEN``).

``FLINKOPS_JVM_LAUNCH=scripts`` (read when the runtime is created) starts every process through the scripts
instead, for debugging or a configuration the Python side does not model (then it falls back by itself for that
process, with a log line).

Called by: ``runtimes/local/runtime.py``.

Invariants: a launch reads only the cluster's rendered ``conf/config.yaml`` (never the request, so a replacement
TaskManager or standby JobManager after a controller restart starts exactly like the first); the command execs
the JVM itself (the recorded pid is the JVM's, in both modes).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from flinkops.api.flinkconf import METRICS_FETCH_KEY, METRICS_FETCH_MS
from flinkops.api.secrets import ENV_PREFIX, config_references, substitute
from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.jars import manifest_entry_class
from flinkops.flink.memory import NotModelled, ProcessResources, jobmanager_resources, taskmanager_resources
from flinkops.ports import ApplicationJob, ClusterRequest
from flinkops.runtimes.local.cds import CdsPlan, ClassDataSharing

__all__ = [
    "LAUNCH_ENV",
    "Launch",
    "Launcher",
    "ProcessSpec",
    "cluster_config",
    "flink_classpath",
    "free_ports",
    "java_feature_version",
    "jobmanager_args",
    "launch_mode",
    "link_jars",
    "link_plugins",
    "read_config",
    "write_log_config",
]

log = logging.getLogger("flinkops.runtimes.local")

LAUNCH_ENV = "FLINKOPS_JVM_LAUNCH"
DIRECT, SCRIPTS = "direct", "scripts"

SESSION_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
APPLICATION_MAIN = "org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint"
TASKMANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
# (service name in log file names, main class, script) per kind of process, as flink-console.sh names them.
_SESSION = ("standalonesession", SESSION_MAIN, "jobmanager.sh")
_APPLICATION = ("standalonejob", APPLICATION_MAIN, "standalone-job.sh")
_TASKMANAGER = ("taskexecutor", TASKMANAGER_MAIN, "taskmanager.sh")
_LOG_CONFIG = "log4j-console.properties"
_CONTROLLER_CREDENTIALS = ("VAULT_TOKEN", "BAO_TOKEN")


def launch_mode(value: str | None = None) -> str:
    """``direct`` (default) or ``scripts``, from ``value`` or ``$FLINKOPS_JVM_LAUNCH``."""
    mode = (value if value is not None else os.environ.get(LAUNCH_ENV, "")).strip().lower() or DIRECT
    if mode not in (DIRECT, SCRIPTS):
        raise RuntimeFailure(f"{LAUNCH_ENV}={mode!r}: expected {DIRECT!r} or {SCRIPTS!r}")
    return mode


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start. ``args`` are the ones the runtime passes to the scripts: ``-D`` ports and, for an
    application JobManager, ``--job-classname ... --job-id ... <program args>``."""

    role: str  # "jobmanager" | "taskmanager"
    application: bool
    ident: str  # FLINK_IDENT_STRING: the deployment's name
    root: Path  # the cluster directory: conf/, lib/, plugins/, tmp/
    log_dir: Path
    args: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)  # the job's own variables, set last


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    mode: str
    stdout: Path  # where the console output goes
    stderr: Path | None = None  # None: into stdout
    cds: CdsPlan | None = None


def read_config(conf_dir: Path) -> dict[str, str]:
    """The cluster's rendered ``config.yaml`` as flat string keys and values (nested maps joined with dots)."""
    try:
        data = yaml.safe_load((conf_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuntimeFailure(f"cannot read {conf_dir / 'config.yaml'}: {exc}") from exc
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, bool):
            flat[prefix] = str(value).lower()
        elif isinstance(value, list):
            flat[prefix] = ";".join(str(v) for v in value)
        elif value is not None:
            flat[prefix] = str(value)

    walk("", data)
    return flat


def flink_classpath(lib_dir: Path) -> list[str]:
    """``constructFlinkClassPath``: the jars of ``lib_dir`` sorted by name with flink-dist last, each resolved
    to the file a link points at (the same jar is then the same classpath entry in every cluster)."""
    jars = sorted(p for p in lib_dir.iterdir() if p.name.endswith(".jar") and not p.is_dir())
    dist = [p for p in jars if re.fullmatch(r"flink-dist[^/]*\.jar", p.name)]
    if len(dist) != 1:
        found = "no" if not dist else "more than one"
        raise RuntimeFailure(f"{found} flink-dist jar in {lib_dir}")
    return [str(p.resolve()) for p in jars if p not in dist] + [str(dist[0].resolve())]


@functools.cache
def java_feature_version(java: str) -> int:
    """The Java feature version (8, 11, 17, 21) of ``java``: from the JDK's ``release`` file when there is one
    (no JVM start), else from ``java -XshowSettings:properties``."""
    real = Path(java if os.sep in java else (shutil.which(java) or java)).resolve()
    for home in (real.parent.parent, real.parent.parent.parent):
        release = home / "release"
        if release.is_file():
            match = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"), re.MULTILINE)
            if match:
                return _feature(match.group(1))
    out = subprocess.run(
        [java, "-XshowSettings:properties", "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r"java\.specification\.version = (\S+)", out.stderr + out.stdout)
    if match is None:
        raise RuntimeFailure(f"cannot tell the Java version of {java}: {out.stderr.strip()[-300:]}")
    return _feature(match.group(1))


def _feature(version: str) -> int:
    parts = version.split(".")
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.sub(r"\D.*", "", parts[0]) or 0)


def _unquote(value: str, quote: str = '"') -> str:
    """The scripts strip one leading and one trailing quote from these values."""
    value = value.strip()
    value = value[1:] if value.startswith(quote) else value
    return value[:-1] if value.endswith(quote) else value


def _expand(text: str, env: Mapping[str, str]) -> list[str]:
    """``eval echo`` of the java opts in flink-console.sh: variables expanded, then split into words."""
    expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)
    return shlex.split(expanded)


class Launcher:
    """Builds the command for each process of the local runtime (see the module docstring)."""

    def __init__(self, dist: FlinkDistribution, mode: str | None = None, cds: ClassDataSharing | None = None) -> None:
        self.dist = dist
        self.mode = launch_mode(mode)
        self.cds = cds if cds is not None else ClassDataSharing.from_environment()

    def command(self, spec: ProcessSpec) -> Launch:
        env = self._base_env(spec)
        config = read_config(spec.root / "conf")
        spec = _with_secrets(spec, config)
        if self.mode == DIRECT:
            try:
                return self._direct(spec, config, env)
            except NotModelled as exc:
                log.info("%s: starting %s through Flink's scripts: %s", spec.ident, spec.role, exc)
        return self._scripts(spec, env)

    def started(self, launch: Launch, pid: int, ticks: int) -> None:
        """Tell class-data sharing which process records an archive (if this one does)."""
        if launch.cds is not None:
            self.cds.started(launch.cds, pid, ticks)

    def records_classes(self, pid: int, ticks: int) -> bool:
        """Whether that process writes a class-data sharing archive as it exits (give it time to stop)."""
        return self.cds.is_recording(pid, ticks)

    # ------------------------------------------------------------------ the two modes

    def _base_env(self, spec: ProcessSpec) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FLINK_CONF_DIR": str(spec.root / "conf"),
                "FLINK_LIB_DIR": str(spec.root / "lib"),
                "FLINK_LOG_DIR": str(spec.log_dir),
                "FLINK_PID_DIR": str(spec.root / "tmp"),
                "FLINK_PLUGINS_DIR": str(spec.root / "plugins"),
                "FLINK_IDENT_STRING": spec.ident,
            }
        )
        env.pop("FLINK_HOME", None)
        for credential in _CONTROLLER_CREDENTIALS:  # the controller's access to Vault is not the job's
            env.pop(credential, None)
        return env

    def _kind(self, spec: ProcessSpec) -> tuple[str, str, str]:
        if spec.role == "taskmanager":
            return _TASKMANAGER
        return _APPLICATION if spec.application else _SESSION

    def _scripts(self, spec: ProcessSpec, env: dict[str, str]) -> Launch:
        env.update(spec.environment)
        script = self._kind(spec)[2]
        argv = [str(self.dist.bin / script), "start-foreground", *spec.args]
        return Launch(argv=argv, env=env, mode=SCRIPTS, stdout=spec.log_dir / f"{spec.role}.out")

    def _direct(self, spec: ProcessSpec, config: Mapping[str, str], env: dict[str, str]) -> Launch:
        service, main, _ = self._kind(spec)
        resources = taskmanager_resources(config) if spec.role == "taskmanager" else jobmanager_resources(config)
        java_home = _unquote(config.get("env.java.home", ""))
        java = str(Path(java_home) / "bin" / "java") if java_home else self.dist.java
        conf_dir = spec.root / "conf"
        prefix = spec.log_dir / f"flink-{spec.ident}-{service}-0-{os.environ.get('HOSTNAME') or socket.gethostname()}"
        env.update(
            {
                "FLINK_BIN_DIR": str(self.dist.bin),
                "FLINK_OPT_DIR": env.get("FLINK_OPT_DIR") or str(self.dist.opt),
                "MAX_LOG_FILE_NUMBER": env.get("MAX_LOG_FILE_NUMBER") or _unquote(config.get("env.log.max", "10"), "'"),
                "ROOT_LOG_LEVEL": env.get("ROOT_LOG_LEVEL") or config.get("env.log.level", "INFO"),
            }
        )
        if java_home:
            env["JAVA_HOME"] = java_home
        classpath = flink_classpath(spec.root / "lib") + _hadoop_classpath(config, env)
        java_opts = self._java_opts(spec.role, config, java, {**env, "FLINK_LOG_PREFIX": str(prefix)})
        redirect = config.get("env.stdout-err.redirect-to-file", "false").strip().lower() == "true"
        log_settings = [
            *(["-Dconsole.log.level=OFF"] if redirect else []),
            f"-Dlog.file={prefix}.log",
            f"-Dlog4j.configuration=file:{conf_dir / _LOG_CONFIG}",
            f"-Dlog4j.configurationFile=file:{conf_dir / _LOG_CONFIG}",
            f"-Dlogback.configurationFile=file:{conf_dir / 'logback-console.xml'}",
        ]
        cds = self.cds.plan(java, java_feature_version(java), self.dist.version, main, classpath)
        args = self._arguments(spec, conf_dir, resources)
        env["FLINK_INHERITED_LOGS"] = (
            f"\nRESOURCE_PARAMS computed by flinkops (no BashJavaUtils run):\njvm_params: "
            f"{' '.join(resources.jvm_args)}\ndynamic_configs: {' '.join(resources.dynamic_args())}\n"
        )
        env.update(spec.environment)
        argv = [
            java,
            *shlex.split(env.get("JVM_ARGS", "")),
            *resources.jvm_args,
            *java_opts,
            *(cds.flags if cds is not None else ()),
            *log_settings,
            "-classpath",
            os.pathsep.join(classpath),
            main,
            *args,
        ]
        if redirect:
            return Launch(argv, env, DIRECT, Path(f"{prefix}.out"), Path(f"{prefix}.err"), cds)
        return Launch(argv, env, DIRECT, spec.log_dir / f"{spec.role}.out", None, cds)

    def _java_opts(self, role: str, config: Mapping[str, str], java: str, env: Mapping[str, str]) -> list[str]:
        """FLINK_ENV_JAVA_OPTS as config.sh and jobmanager.sh/taskmanager.sh assemble it."""
        if env.get("FLINK_ENV_JAVA_OPTS"):
            common = env["FLINK_ENV_JAVA_OPTS"]
        else:
            opts = config.get("env.java.opts.all", "") or config.get("env.java.opts", "")
            common = _unquote(f"{config.get('env.java.default-opts.all', '')} {opts}")
            common = f"-XX:+IgnoreUnrecognizedVMOptions {common}"
            if java_feature_version(java) > 17:
                common += " -Djava.security.manager=allow"
        own = env.get(f"FLINK_ENV_JAVA_OPTS_{'JM' if role == 'jobmanager' else 'TM'}")
        if own is None:
            own = _unquote(
                f"{config.get(f'env.java.default-opts.{role}', '')} {config.get(f'env.java.opts.{role}', '')}"
            )
        return _expand(f"{common} {own}", env)

    @staticmethod
    def _arguments(spec: ProcessSpec, conf_dir: Path, resources: ProcessResources) -> list[str]:
        """Program arguments in the order the scripts produce them (jobmanager.sh puts the memory properties
        first; standalone-job.sh and taskmanager.sh put ``--configDir`` first)."""
        config_dir = ["--configDir", str(conf_dir)]
        dynamic = resources.dynamic_args()
        if spec.role == "jobmanager" and not spec.application:
            return [*dynamic, *config_dir, *spec.args]
        return [*config_dir, *dynamic, *spec.args]


def _with_secrets(spec: ProcessSpec, config: Mapping[str, str]) -> ProcessSpec:
    """``spec`` with the values of its secret references in its arguments (``-Dkey=value`` first, then the
    arguments with a reference at their end substituted) and without the variables that carried them."""
    values = {k: v for k, v in spec.environment.items() if k.startswith(ENV_PREFIX)}
    refs = config_references(config)
    if not refs and not values:
        return spec
    try:
        dynamic = [f"-D{key}={substitute(config[key], values)}" for key in sorted(refs)]
        args = [substitute(arg, values) for arg in spec.args]
    except KeyError as exc:
        raise RuntimeFailure(
            f"{spec.ident}: the secret {exc.args[0]} was not resolved for the {spec.role}; the controller resolves "
            "secrets when it starts a process (see its log)"
        ) from None
    environment = {k: v for k, v in spec.environment.items() if not k.startswith(ENV_PREFIX)}
    return replace(spec, args=(*dynamic, *args), environment=environment)


def _hadoop_classpath(config: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """``INTERNAL_HADOOP_CLASSPATHS`` of config.sh, without its empty entries."""
    hadoop_conf = env.get("HADOOP_CONF_DIR") or config.get("env.hadoop.conf.dir", "")
    if not hadoop_conf and env.get("HADOOP_HOME"):
        home = Path(env["HADOOP_HOME"])
        hadoop_conf = next((str(d) for d in (home / "etc" / "hadoop", home / "conf") if d.is_dir()), "")
    if not hadoop_conf and not env.get("HADOOP_CLASSPATH") and Path("/etc/hadoop/conf").is_dir():
        hadoop_conf = "/etc/hadoop/conf"
    hbase_conf = env.get("HBASE_CONF_DIR") or config.get("env.hbase.conf.dir", "")
    if not hbase_conf and env.get("HBASE_HOME") and Path(env["HBASE_HOME"], "conf").is_dir():
        hbase_conf = str(Path(env["HBASE_HOME"], "conf"))
    if not hbase_conf and Path("/etc/hbase/conf").is_dir():
        hbase_conf = "/etc/hbase/conf"
    entries: Sequence[str] = (
        *env.get("HADOOP_CLASSPATH", "").split(os.pathsep),
        hadoop_conf,
        env.get("YARN_CONF_DIR") or config.get("env.yarn.conf.dir", ""),
        hbase_conf,
    )
    return [e for e in entries if e]


def jobmanager_args(rest_port: int, rpc_port: int, app: ApplicationJob | None) -> tuple[str, ...]:
    """A JobManager's own ports on top of the shared conf/ (with HA the RPC port comes from its HA key), then
    the application it runs, if any."""
    args: list[str] = []
    if rest_port:
        args += ["-D", f"rest.port={rest_port}"]
    if rpc_port:
        args += ["-D", f"jobmanager.rpc.port={rpc_port}", "-D", f"high-availability.jobmanager.port={rpc_port}"]
    if app is not None:
        entry_class = app.entry_class or _jar_entry_class(app.jar_paths)
        # Without a class name Flink looks for one in usrlib/ itself; an empty one kills the JobManager.
        args += ["--job-classname", entry_class] if entry_class else []
        args += ["--job-id", app.job_id, *app.args]
    return tuple(args)


def _jar_entry_class(jars: Sequence[Path]) -> str | None:
    """The entry class the job's jar names in its manifest (what Flink uses when the spec gives none)."""
    for jar in jars:
        try:
            found = manifest_entry_class(jar)
        except (OSError, zipfile.BadZipFile):
            continue
        if found:
            log.info("no entryClass in the spec: running %s, the Main-Class of %s", found, jar.name)
            return found
    return None


def free_ports(count: int, avoid: set[int] | None = None) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago (none of ``avoid``)."""
    taken = set(avoid or ())
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


# ------------------------------------------------------------------------------------------------ cluster directory


def link_jars(dist: FlinkDistribution, root: Path, request: ClusterRequest) -> None:
    """``lib/``: links to the distribution's jars and the deployment's extra ones; ``usrlib/``: the job's jars
    (and flink-python for a PyFlink job)."""
    for jar in [*dist.lib_jars(), *request.lib_jars]:
        if not jar.is_file():
            raise RuntimeFailure(f"{request.key}: jar {jar} for the cluster's lib/ does not exist")
        target = root / "lib" / jar.name
        if not target.exists():
            target.symlink_to(jar.resolve())
    app = request.application
    if app is None:
        return
    jars = list(app.jar_paths)
    if app.python:
        jars.append(dist.python_jar())
    for jar in jars:
        if not jar.is_file():
            raise RuntimeFailure(f"job jar {jar} does not exist")
        target = root / "usrlib" / jar.name
        if not target.exists():
            target.symlink_to(jar.resolve())


def link_plugins(dist: FlinkDistribution, root: Path, request: ClusterRequest) -> None:
    """The cluster's own plugin dir (``FLINK_PLUGINS_DIR``): the distribution's bundled plugins plus the
    optional ones this deployment enables, one jar per plugin subdirectory as Flink expects."""
    plugins = root / "plugins"
    if dist.plugins.is_dir():
        for bundled in sorted(dist.plugins.iterdir()):
            if bundled.is_dir() and bundled.name not in request.plugins:
                (plugins / bundled.name).symlink_to(bundled.resolve(), target_is_directory=True)
    for name, jar in sorted(request.plugins.items()):
        if not jar.is_file():
            raise RuntimeFailure(f"{request.key}: plugin jar {jar} for {name!r} does not exist")
        (plugins / name).mkdir()
        (plugins / name / jar.name).symlink_to(jar.resolve())


def cluster_config(request: ClusterRequest, rest_port: int, rpc_port: int, root: Path) -> dict[str, str]:
    """The rendered configuration plus what the local runtime owns: loopback addresses, ports, temp dirs."""
    config = dict(request.flink_config)
    config.setdefault(METRICS_FETCH_KEY, METRICS_FETCH_MS)
    config.update(
        {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": str(rpc_port),
            "jobmanager.bind-host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": str(rest_port),
            "blob.server.port": "0",
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": "0",
            "metrics.internal.query-service.port": "0",
            "io.tmp.dirs": str(root / "tmp"),
            "web.tmpdir": str(root / "tmp"),
        }
    )
    return config


def write_log_config(dist: FlinkDistribution, root: Path, request: ClusterRequest) -> None:
    """``conf/log4j-console.properties``: the deployment's own, or the distribution's."""
    custom = request.log_config.get(_LOG_CONFIG)
    target = root / "conf" / _LOG_CONFIG
    if custom is not None:
        target.write_text(custom)
    else:
        shutil.copyfile(dist.home / "conf" / _LOG_CONFIG, target)
