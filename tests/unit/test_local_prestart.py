"""The local runtime's pre-started clusters: when it refuses to start a second cluster, and the memory sums."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
from flinkops.runtimes.local.prestart import MEMORY_MARGIN, Prestarter, memory_available, memory_needed

MIB = 1 << 20
CONFIG = {"jobmanager.memory.process.size": "1024m", "taskmanager.memory.process.size": "1g"}


def request(config: dict[str, str] | None = None, *, python: bool = False, taskmanagers: int = 2) -> ClusterRequest:
    app = ApplicationJob("com.example.Job", (), "", jar_paths=(Path("/jobs/job.jar"),), python=python)
    return ClusterRequest(
        ClusterKey("default", "app"),
        2,
        {**CONFIG, **(config or {})},
        taskmanager_replicas=taskmanagers,
        application=app,
    )


def prestarter(available: int | None) -> Prestarter:
    return Prestarter(cast(Any, None), available=lambda: available)


def test_the_new_cluster_needs_its_jobmanager_and_every_taskmanager() -> None:
    assert memory_needed(CONFIG, 2) == 3 * 1024 * MIB
    assert memory_needed({}, 1) == (1600 + 1728) * MIB, "Flink's shipped sizes when none is configured"


def test_mem_available_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683792 kB\nMemAvailable:    2048000 kB\n")
    assert memory_available(meminfo) == 2048000 * 1024
    assert memory_available(tmp_path / "missing") is None


def test_enough_memory_is_no_refusal() -> None:
    assert prestarter(3 * 1024 * MIB + MEMORY_MARGIN).refusal(request()) is None
    assert prestarter(None).refusal(request()) is None, "no MemAvailable: no reason to refuse"


def test_too_little_memory_is_refused_with_the_figures() -> None:
    reason = prestarter(3 * 1024 * MIB).refusal(request())
    assert reason is not None and "3072 MiB configured" in reason and "3072 MiB available" in reason


def test_zookeeper_ha_and_pyflink_are_refused() -> None:
    ha = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}
    assert "high availability" in (prestarter(None).refusal(request(ha)) or "")
    assert "PyFlink" in (prestarter(None).refusal(request(python=True)) or "")
