"""flink/memory.py against Flink itself: for each configuration, the JVM flags and dynamic properties must be
exactly what the distribution's BashJavaUtils prints (it is run here, once per configuration and process kind),
and a configuration BashJavaUtils refuses must be refused too."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from flinkops.flink.distribution import FlinkDistribution, find_distribution
from flinkops.flink.memory import (
    MemoryConfigError,
    NotModelled,
    ProcessResources,
    jobmanager_resources,
    parse_memory_size,
    taskmanager_resources,
)

PREFIX = "BASH_JAVA_UTILS_EXEC_RESULT:"

CONFIGS: dict[str, dict[str, str]] = {
    # What flinkops renders when the spec says nothing about memory.
    "defaults": {"jobmanager.memory.process.size": "1024m", "taskmanager.memory.process.size": "1024m"},
    "process size": {
        "jobmanager.memory.process.size": "1600m",
        "taskmanager.memory.process.size": "1728m",
        "taskmanager.numberOfTaskSlots": "2",
    },
    "flink size": {
        "jobmanager.memory.flink.size": "900m",
        "taskmanager.memory.flink.size": "1500m",
        "taskmanager.cpu.cores": "0.5",
    },
    "explicit heap and managed": {
        "jobmanager.memory.heap.size": "700m",
        "taskmanager.memory.task.heap.size": "300m",
        "taskmanager.memory.managed.size": "200m",
    },
    "large, capped overhead and network": {
        "jobmanager.memory.process.size": "16g",
        "jobmanager.memory.enable-jvm-direct-memory-limit": "true",
        "taskmanager.memory.process.size": "64g",
        "taskmanager.memory.network.max": "2g",
    },
    "process size with fractions and deprecated keys": {
        "jobmanager.memory.process.size": "1333m",
        "jobmanager.memory.jvm-overhead.fraction": "0.17",
        "taskmanager.memory.process.size": "1337m",
        "taskmanager.memory.jvm-overhead.fraction": "0.13",
        "taskmanager.memory.jvm-metaspace.size": "200m",
        "taskmanager.network.memory.fraction": "0.15",
        "taskmanager.memory.managed.fraction": "0.25",
    },
    "process size with heap, flink size and managed": {
        "jobmanager.memory.process.size": "2g",
        "jobmanager.memory.heap.size": "1g",
        "taskmanager.memory.process.size": "1100m",
        "taskmanager.memory.flink.size": "600m",
        "taskmanager.memory.task.heap.size": "100m",
        "taskmanager.memory.size": "100m",
    },
    # Flink refuses both: the overhead left over is below its minimum, and the components exceed the total.
    "inconsistent": {
        "jobmanager.memory.process.size": "1000m",
        "jobmanager.memory.flink.size": "600m",
        "taskmanager.memory.process.size": "1g",
        "taskmanager.memory.task.heap.size": "800m",
    },
}


def bash_java_utils(
    dist: FlinkDistribution, command: str, config: dict[str, str], work: Path
) -> ProcessResources | str:
    """What BashJavaUtils prints for ``config``: the parsed two result lines, or its output when it fails."""
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    flink_dist = next(dist.lib.glob("flink-dist-*.jar"))
    out = subprocess.run(
        [
            dist.java,
            "-XX:TieredStopAtLevel=1",
            "-cp",
            f"{dist.bin / 'bash-java-utils.jar'}:{flink_dist}",
            "org.apache.flink.runtime.util.bash.BashJavaUtils",
            command,
            "--configDir",
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    results = [line.removeprefix(PREFIX) for line in out.stdout.splitlines() if line.startswith(PREFIX)]
    if out.returncode != 0 or len(results) != 2:
        return out.stdout + out.stderr
    words = results[1].split()
    assert words[::2] == ["-D"] * (len(words) // 2)
    dynamic = dict(pair.split("=", 1) for pair in words[1::2])
    return ProcessResources(tuple(results[0].split()), dynamic)


@pytest.fixture(scope="module")
def flink_says(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], ProcessResources | str]:
    """BashJavaUtils' answer per (configuration name, JM|TM), computed two at a time."""
    dist = find_distribution()
    base = tmp_path_factory.mktemp("bash-java-utils")
    jobs = [(name, kind, f"GET_{kind}_RESOURCE_PARAMS") for name in CONFIGS for kind in ("JM", "TM")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = pool.map(
            lambda job: bash_java_utils(dist, job[2], CONFIGS[job[0]], base / f"{job[0]}-{job[1]}".replace(" ", "_")),
            jobs,
        )
        return {(name, kind): answer for (name, kind, _), answer in zip(jobs, answers, strict=True)}


@pytest.mark.parametrize("kind", ["JM", "TM"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_flags_and_properties_as_bash_java_utils(
    flink_says: dict[tuple[str, str], ProcessResources | str], name: str, kind: str
) -> None:
    expected = flink_says[(name, kind)]
    compute = jobmanager_resources if kind == "JM" else taskmanager_resources
    if name == "inconsistent":
        assert isinstance(expected, str) and "IllegalConfigurationException" in expected
        with pytest.raises(MemoryConfigError):
            compute(CONFIGS[name])
        return
    assert isinstance(expected, ProcessResources), expected
    ours = compute(CONFIGS[name])
    assert ours.jvm_args == expected.jvm_args
    assert dict(ours.dynamic_properties) == dict(expected.dynamic_properties)


def test_the_rendered_defaults() -> None:
    """The numbers every default deployment starts with (also checked against Flink above)."""
    jm = jobmanager_resources(CONFIGS["defaults"])
    assert jm.jvm_args == ("-Xmx469762048", "-Xms469762048", "-XX:MaxMetaspaceSize=268435456")
    tm = taskmanager_resources(CONFIGS["defaults"])
    assert tm.dynamic_properties["taskmanager.memory.managed.size"] == "241591914b"  # 0.4f, not 0.4
    assert tm.dynamic_args()[:2] == ["-D", "taskmanager.cpu.cores=1.0"]


def test_memory_sizes_parse_as_flink_does() -> None:
    assert parse_memory_size("1024") == 1024
    assert parse_memory_size(" 1 GB ") == 1 << 30
    assert parse_memory_size("512m") == parse_memory_size("512 mebibytes") == 512 << 20
    with pytest.raises(MemoryConfigError):
        parse_memory_size("1.5g")
    with pytest.raises(MemoryConfigError):
        parse_memory_size("12 parsecs")


def test_nothing_configured_and_external_resources() -> None:
    with pytest.raises(MemoryConfigError, match=r"jobmanager\.memory\.process\.size"):
        jobmanager_resources({})
    with pytest.raises(NotModelled):
        taskmanager_resources({"taskmanager.memory.process.size": "1g", "external-resources": "gpu"})
