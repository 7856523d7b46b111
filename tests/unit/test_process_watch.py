"""Telling which recorded processes still run, cheaply enough for every loop turn: ``procs.ProcessWatch`` (pidfds
and one poll) agrees with ``same_process`` (a read of /proc) on every case, and the local runtime reports a
cluster whose process died (``changed_clusters``) on the next turn, listing the cluster records again only when a
directory changed. Real child processes (``sleep``) stand in for Flink's JVMs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.ports import ClusterKey
from flinkops.procs import ProcessWatch, same_process, start_ticks
from flinkops.runtimes.local.records import ProcessRecord, RecordFiles
from support.ha import runtime


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def ident(proc: subprocess.Popen[bytes]) -> tuple[int, int]:
    ticks = start_ticks(proc.pid)
    assert ticks is not None
    return proc.pid, ticks


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["pidfd", "proc"])
def watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessWatch]:
    """The watch as it runs here, and as it runs where pidfds are not available (reading /proc instead)."""
    if request.param == "proc":

        def no_pidfds(pid: int, flags: int = 0) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfds)
    watch = ProcessWatch()
    yield watch
    watch.close()


def test_a_running_process_is_alive_until_it_exits_zombie_or_reaped(
    watch: ProcessWatch, sleeper: subprocess.Popen[bytes]
) -> None:
    me = ident(sleeper)
    assert watch.alive([me]) == {me} and watch.alive([me]) == {me}
    sleeper.kill()
    os.waitid(os.P_PID, sleeper.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet: a zombie
    assert watch.alive([me]) == set() and not same_process(*me)
    sleeper.wait()
    assert watch.alive([me]) == set(), "dead stays dead"


def test_a_pid_that_now_names_another_process_or_none_is_not_ours(
    watch: ProcessWatch, sleeper: subprocess.Popen[bytes]
) -> None:
    pid, ticks = ident(sleeper)
    recycled, missing = (pid, ticks + 1), (2**22 + 12345, 1)
    assert watch.alive([recycled, missing, (pid, ticks)]) == {(pid, ticks)}


def test_a_death_is_told_once_by_exited_however_it_was_noticed(
    watch: ProcessWatch, sleeper: subprocess.Popen[bytes]
) -> None:
    me = ident(sleeper)
    watch.watch([me])
    assert watch.exited() == set()
    sleeper.kill()
    sleeper.wait()
    assert watch.alive([me]) == set(), "a pass noticed it first"
    assert watch.exited() == {me}, "the loop still hears of it"
    assert watch.exited() == set(), "once"


def test_a_process_dead_before_it_was_watched_never_counts_as_exited(watch: ProcessWatch) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    watch.watch([(child.pid, 1), (2**22 + 12345, 1)])
    assert watch.exited() == set()


def test_processes_no_record_names_are_forgotten_and_their_pidfds_closed(sleeper: subprocess.Popen[bytes]) -> None:
    watch = ProcessWatch()
    before = open_fds()
    watch.watch([ident(sleeper)])
    assert open_fds() == before + 1, "one pidfd per watched process"
    watch.watch([])
    assert open_fds() == before


def test_the_runtime_reports_the_cluster_whose_process_died_on_the_next_turn(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    key = ClusterKey("default", "app")
    pid, ticks = ident(sleeper)
    root = tmp_path / "clusters" / key.namespace / key.name
    root.mkdir(parents=True)
    (tmp_path / "clusters" / "default" / "deleted" / "log").mkdir(parents=True)  # a deleted cluster keeps its logs
    taskmanager = ProcessRecord("taskmanager", 0, pid, ticks, str(root / "log"))
    (root / "cluster.json").write_text(json.dumps({"generation": 1, "processes": [vars(taskmanager)]}))
    local = runtime(tmp_path)
    try:
        assert local.changed_clusters() == [] and local.changed_clusters() == []
        sleeper.kill()
        sleeper.wait()
        assert local.changed_clusters() == [key]
        assert local.changed_clusters() == [], "reported once"
    finally:
        local.close()


def test_cluster_records_are_listed_again_when_a_directory_changed(tmp_path: Path) -> None:
    files = RecordFiles(tmp_path, "cluster.json")
    assert files() == [], "no cluster yet"
    namespace = tmp_path / "clusters" / "default"
    (namespace / "a").mkdir(parents=True)
    for directory in (tmp_path / "clusters", namespace):
        os.utime(directory, ns=(10**18, 10**18))  # changed long ago: the listing is trusted
    assert files() == [(ClusterKey("default", "a"), str(namespace / "a" / "cluster.json"))]
    assert files() == files(), "listed once, then only the directories are stat'ed"
    (namespace / "b").mkdir()
    (tmp_path / "clusters" / "other" / "c").mkdir(parents=True)
    assert sorted(key.name for key, _ in files() or []) == ["a", "b", "c"], "new clusters and namespaces are seen"
