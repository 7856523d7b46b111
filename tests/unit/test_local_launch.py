"""How the local runtime starts Flink processes (runtimes/local/launch.py and cds.py): the java command line it
builds in place of the distribution's scripts, the fallback to the scripts, and class-data sharing recorded by
one real JVM and used by the next."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution, find_distribution
from flinkops.flink.memory import jobmanager_resources, taskmanager_resources
from flinkops.ports import ApplicationJob
from flinkops.runtimes.local.cds import ClassDataSharing
from flinkops.runtimes.local.launch import (
    APPLICATION_MAIN,
    LAUNCH_ENV,
    SESSION_MAIN,
    TASKMANAGER_MAIN,
    Launcher,
    ProcessSpec,
    flink_classpath,
    jobmanager_args,
    launch_mode,
)
from flinkops.runtimes.local.proc import start_ticks

CONFIG = {
    "jobmanager.memory.process.size": "1024m",
    "taskmanager.memory.process.size": "1280m",
    "taskmanager.numberOfTaskSlots": "2",
    "env.java.opts.all": "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "env.java.opts.jobmanager": "-Xlog:gc:file=${FLINK_LOG_PREFIX}.gc",
    "env.java.opts.taskmanager": '"-Dtm.only=yes"',
}


@pytest.fixture(scope="module")
def dist() -> FlinkDistribution:
    return find_distribution()


def cluster(root: Path, dist: FlinkDistribution, config: dict[str, str] | None = None) -> Path:
    """A cluster directory as the runtime prepares it: conf/config.yaml and lib/ links to the distribution."""
    (root / "conf").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config or CONFIG))
    for jar in dist.lib_jars():
        (root / "lib" / jar.name).symlink_to(jar)
    return root


def spec(root: Path, role: str, *, application: bool = False, args: tuple[str, ...] = ()) -> ProcessSpec:
    log_dir = root / "log" / f"{role}-0"
    log_dir.mkdir(parents=True, exist_ok=True)
    return ProcessSpec(role, application, "fraud", root, log_dir, args, {"SECRET_TOKEN": "s3cr3t"})


def direct(dist: FlinkDistribution) -> Launcher:
    return Launcher(dist, "direct", ClassDataSharing.disabled())


def test_a_session_jobmanager_is_one_java_command(tmp_path: Path, dist: FlinkDistribution) -> None:
    root = cluster(tmp_path, dist)
    ports = jobmanager_args(8081, 6123, None)
    launch = direct(dist).command(spec(root, "jobmanager", args=ports))
    argv = launch.argv
    memory = jobmanager_resources(CONFIG)
    assert argv[0] == dist.java
    assert argv[1:4] == list(memory.jvm_args), "memory flags as BashJavaUtils computes them"
    assert "-XX:+IgnoreUnrecognizedVMOptions" in argv and "--add-opens=java.base/java.lang=ALL-UNNAMED" in argv
    prefix = root / "log" / "jobmanager-0" / f"flink-fraud-standalonesession-0-{socket.gethostname()}"
    assert f"-Xlog:gc:file={prefix}.gc" in argv, "${FLINK_LOG_PREFIX} is expanded as flink-console.sh does"
    assert "-Dtm.only=yes" not in argv
    assert f"-Dlog.file={prefix}.log" in argv
    assert f"-Dlog4j.configurationFile=file:{root / 'conf' / 'log4j-console.properties'}" in argv
    main = argv.index(SESSION_MAIN)
    classpath = argv[main - 1].split(os.pathsep)
    assert argv[main - 2] == "-classpath"
    assert classpath == flink_classpath(root / "lib")
    assert Path(classpath[-1]).name.startswith("flink-dist") and all(str(root) not in c for c in classpath)
    # jobmanager.sh: memory properties, then --configDir, then the runtime's own -D ports.
    assert argv[main + 1 :] == [*memory.dynamic_args(), "--configDir", str(root / "conf"), *ports]
    env = launch.env
    assert env["FLINK_CONF_DIR"] == str(root / "conf") and env["FLINK_LIB_DIR"] == str(root / "lib")
    assert env["FLINK_PLUGINS_DIR"] == str(root / "plugins") and env["FLINK_OPT_DIR"] == str(dist.opt)
    assert env["SECRET_TOKEN"] == "s3cr3t" and "FLINK_HOME" not in env
    assert "jvm_params: -Xmx" in env["FLINK_INHERITED_LOGS"]
    assert launch.stdout == root / "log" / "jobmanager-0" / "jobmanager.out" and launch.stderr is None


def test_application_jobmanager_and_taskmanager_arguments(tmp_path: Path, dist: FlinkDistribution) -> None:
    root = cluster(tmp_path, dist)
    app = ApplicationJob("org.apache.flink.client.python.PythonDriver", ("-py", "job.py"), "00" * 16)
    args = jobmanager_args(8081, 6123, app)
    jm = direct(dist).command(spec(root, "jobmanager", application=True, args=args)).argv
    main = jm.index(APPLICATION_MAIN)
    # standalone-job.sh: --configDir, the memory properties, then ports, job class, job id, program arguments.
    memory = jobmanager_resources(CONFIG).dynamic_args()
    assert jm[main + 1 :] == ["--configDir", str(root / "conf"), *memory, *args]
    assert jm[-6:] == ["--job-classname", app.entry_class, "--job-id", app.job_id, "-py", "job.py"]

    tm = direct(dist).command(spec(root, "taskmanager")).argv
    main = tm.index(TASKMANAGER_MAIN)
    resources = taskmanager_resources(CONFIG)
    assert tm[1:5] == list(resources.jvm_args)
    assert tm[main + 1 :] == ["--configDir", str(root / "conf"), *resources.dynamic_args()]
    assert "-Dtm.only=yes" in tm, "role opts are unquoted like config.sh does"
    assert "taskmanager.numberOfTaskSlots=2" in tm


def test_scripts_on_request_and_for_what_is_not_modelled(
    tmp_path: Path, dist: FlinkDistribution, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = cluster(tmp_path, dist, {**CONFIG, "external-resources": "gpu"})
    monkeypatch.setenv(LAUNCH_ENV, "scripts")
    launcher = Launcher(dist, cds=ClassDataSharing.disabled())
    assert launcher.mode == "scripts"
    launch = launcher.command(spec(root, "jobmanager", args=("-D", "rest.port=1")))
    assert launch.argv == [str(dist.bin / "jobmanager.sh"), "start-foreground", "-D", "rest.port=1"]
    # Direct, but the TaskManager has external resources: its scripts compute them.
    launch = direct(dist).command(spec(root, "taskmanager"))
    assert launch.argv == [str(dist.bin / "taskmanager.sh"), "start-foreground"] and launch.mode == "scripts"
    assert direct(dist).command(spec(root, "jobmanager")).mode == "direct"
    with pytest.raises(RuntimeFailure, match=LAUNCH_ENV):
        launch_mode("fast")


def test_an_invalid_memory_configuration_fails_before_any_process(tmp_path: Path, dist: FlinkDistribution) -> None:
    root = cluster(tmp_path, dist, {**CONFIG, "taskmanager.memory.process.size": "300m"})
    with pytest.raises(RuntimeFailure, match="exceed"):
        direct(dist).command(spec(root, "taskmanager"))


def test_class_data_sharing_is_recorded_once_then_used(tmp_path: Path, dist: FlinkDistribution) -> None:
    """A real JVM records the archive as it exits; the next start checks it, promotes it and maps it."""
    cds = ClassDataSharing(tmp_path / "cds")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    classpath = [str(dist.bin / "bash-java-utils.jar"), str(next(dist.lib.glob("flink-dist-*.jar")))]
    main = "org.apache.flink.runtime.util.bash.BashJavaUtils"

    def run(flags: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        argv = [dist.java, *flags, "-cp", os.pathsep.join(classpath), main, "GET_TM_RESOURCE_PARAMS"]
        proc = subprocess.Popen([*argv, "--configDir", str(conf)], stdout=subprocess.PIPE, text=True)
        ticks = start_ticks(proc.pid)
        assert ticks is not None
        cds.started(recording, proc.pid, ticks)
        assert cds.is_recording(proc.pid, ticks) == (recording.recording is not None)
        out, _ = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(argv, proc.returncode, out)

    recording = cds.plan(dist.java, 17, dist.version, main, classpath)
    assert recording is not None and recording.recording is not None
    assert any(f.startswith("-XX:ArchiveClassesAtExit=") for f in recording.flags)
    assert cds.plan(dist.java, 17, dist.version, main, classpath) is None, "one recording per kind at a time"
    assert run(recording.flags).returncode == 0
    assert recording.recording.is_file()

    using = cds.plan(dist.java, 17, dist.version, main, classpath)
    assert using is not None and using.recording is None
    archive = tmp_path / "cds" / f"{using.key}.jsa"
    assert f"-XX:SharedArchiveFile={archive}" in using.flags and archive.is_file()
    recording = using
    done = run(("-Xshare:on", *using.flags[:1]))  # -Xshare:on: fails unless the archive maps
    assert done.returncode == 0 and "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx" in done.stdout

    other = cds.plan(dist.java, 17, dist.version, "another.Main", classpath)
    assert other is not None and other.recording is not None and other.key != using.key


def test_recordings_that_never_finish_are_given_up(tmp_path: Path) -> None:
    cds = ClassDataSharing(tmp_path)
    for _ in range(3):
        plan = cds.plan("java", 17, "2.2.1", "Main", [])
        assert plan is not None and plan.recording is not None
        cds.started(plan, 1 << 22, 1)  # a pid that is not running: the recording process "died"
    assert cds.plan("java", 17, "2.2.1", "Main", []) is None
    assert ClassDataSharing(tmp_path, enabled=False).plan("java", 17, "2.2.1", "Other", []) is None
