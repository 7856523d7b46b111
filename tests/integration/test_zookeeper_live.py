"""The dev ZooKeeper server (a real one, from the Flink distribution), the small client against it, and the HA
helpers that read and tidy Flink's metadata in it. What needs no server (connect strings, a taken port, what Flink
serialised, session ids in logs) is tests/unit/test_zookeeper.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer, four_letter_word
from flinkops.flink.config import ZooKeeperHA
from flinkops.procs import start_ticks
from flinkops.runtimes.local.ha import leader_rest_url, release_dead_sessions, remove_cluster_metadata
from flinkops.runtimes.local.zookeeper import NODE_EXISTS, ZooKeeperClient, ZooKeeperError
from support.ha import CONNECTION_INFO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(zookeeper: ZooKeeperServer) -> ZooKeeperServer:
    return zookeeper


def cluster(server: ZooKeeperServer, name: str, storage: str | None = None) -> ZooKeeperHA:
    cluster_id = f"/flinkops/test/{name}"
    return ZooKeeperHA(server.connect_string, cluster_id, f"/flink{cluster_id}", storage)


def running(pid: int) -> bool:
    return start_ticks(pid) is not None


# ------------------------------------------------------------------------------------------------ server


def test_server_serves_on_loopback_with_pid_and_log_in_its_directory(server: ZooKeeperServer) -> None:
    assert server.healthy()
    assert server.connect_string == f"127.0.0.1:{server.port}"
    pid = server.pid()
    assert pid is not None and running(pid)
    assert server.pid_file.parent == server.data_dir and server.log_file.is_file()
    assert "Mode: standalone" in four_letter_word("127.0.0.1", server.port, "srvr")
    assert four_letter_word("127.0.0.1", server.port, "ruok") == "imok"
    config = server.config_file.read_text()
    assert "clientPortAddress=127.0.0.1" in config and "admin.enableServer=false" in config


def test_a_second_handle_on_the_same_directory_adopts_the_running_server(server: ZooKeeperServer) -> None:
    other = ZooKeeperServer(server.data_dir)  # no port given: the recorded one
    assert other.port == server.port
    other.start(timeout=10)
    assert other.pid() == server.pid()


def test_data_survives_stop_and_start_on_the_same_port(tmp_path: Path) -> None:
    zk = ZooKeeperServer(tmp_path / "zk")
    zk.start(timeout=60)
    try:
        with ZooKeeperClient(zk.connect_string) as client:
            client.create("/kept/node", b"payload", parents=True)
        pid = zk.pid()
        assert zk.stop() is True
        assert pid is not None and not running(pid) and not zk.healthy() and zk.pid() is None
        assert zk.stop() is False, "stopping a stopped server is a no-op"

        again = ZooKeeperServer(tmp_path / "zk")
        assert again.connect_string == zk.connect_string
        again.start(timeout=60)
        with ZooKeeperClient(again.connect_string) as client:
            found = client.get("/kept/node")
        assert found is not None and found[0] == b"payload"
    finally:
        ZooKeeperServer(tmp_path / "zk").stop()


# ------------------------------------------------------------------------------------------------ client


def test_client_reads_writes_and_deletes_trees(server: ZooKeeperServer) -> None:
    with ZooKeeperClient(server.connect_string) as zk:
        assert zk.session_id
        zk.create("/t/a/b", b"1", parents=True)
        zk.create("/t/a/c")
        assert zk.children("/t/a") == ["b", "c"]
        assert zk.get("/t/a/b") == (b"1", zk.exists("/t/a/b"))
        assert zk.get("/t/missing") is None and zk.children("/t/missing") == [] and zk.exists("/t/x") is None
        with pytest.raises(ZooKeeperError) as exists:
            zk.create("/t/a/c")
        assert exists.value.code == NODE_EXISTS
        assert list(zk.walk("/t")) == ["/t", "/t/a", "/t/a/b", "/t/a/c"]
        assert zk.delete_tree("/t") == 4
        assert zk.exists("/t") is None and zk.delete("/t") is False


def test_a_chroot_in_the_connect_string_is_applied(server: ZooKeeperServer) -> None:
    with ZooKeeperClient(server.connect_string) as zk:
        zk.create("/chrooted")
    with ZooKeeperClient(f"{server.connect_string}/chrooted") as zk:
        assert zk.create("/inside") == "/inside"
    with ZooKeeperClient(server.connect_string) as zk:
        assert zk.children("/chrooted") == ["inside"]
        zk.delete_tree("/chrooted")


def test_closing_a_session_removes_its_ephemeral_nodes(server: ZooKeeperServer) -> None:
    with ZooKeeperClient(server.connect_string) as owner:
        owner.create("/eph", ephemeral=True)
        with ZooKeeperClient(server.connect_string) as other:
            stat = other.exists("/eph")
            assert stat is not None and stat.ephemeral_owner == owner.session_id
    with ZooKeeperClient(server.connect_string) as zk:
        assert zk.exists("/eph") is None


# ------------------------------------------------------------------------------------------- HA helpers


def test_leader_rest_url_comes_from_the_rest_server_connection_info(server: ZooKeeperServer) -> None:
    ha = cluster(server, "leader")
    assert leader_rest_url(ha) is None
    with ZooKeeperClient(server.connect_string) as zk:
        zk.create(ha.connection_info_path("rest_server"), CONNECTION_INFO, parents=True)
        assert leader_rest_url(ha) == "http://127.0.0.1:58079"
        zk.delete_tree(ha.path)


def test_releasing_a_dead_session_deletes_only_its_ephemeral_nodes(server: ZooKeeperServer) -> None:
    ha = cluster(server, "release")
    dead = ZooKeeperClient(server.connect_string)
    alive = ZooKeeperClient(server.connect_string)
    dead.open()
    alive.open()
    try:
        # Like two JobManagers: the first holds the lowest latch node (it leads) and a checkpoint lock.
        dead_latch = dead.create(f"{ha.latch_path}/_c_a-latch-", ephemeral=True, sequential=True, parents=True)
        alive_latch = alive.create(f"{ha.latch_path}/_c_b-latch-", ephemeral=True, sequential=True)
        lock = dead.create(f"{ha.path}/jobs/j/checkpoints/1/locks/x", ephemeral=True, parents=True)
        persistent = f"{ha.path}/jobs/j/checkpoints/1"
        assert dead.session_id is not None
        released = release_dead_sessions(ha, [dead.session_id, 0])
        assert released == [dead_latch, lock], "the latch goes first"
        with ZooKeeperClient(server.connect_string) as zk:
            assert zk.exists(alive_latch) is not None and zk.exists(persistent) is not None
            assert zk.children(ha.latch_path) == [alive_latch.rsplit("/", 1)[1]]
        assert release_dead_sessions(ha, []) == []
    finally:
        dead.close()
        alive.close()
        with ZooKeeperClient(server.connect_string) as zk:
            zk.delete_tree(ha.path)


def test_removing_cluster_metadata_clears_znodes_and_local_storage(server: ZooKeeperServer, tmp_path: Path) -> None:
    ha = cluster(server, "removed", storage=(tmp_path / "ha").as_uri())
    files = tmp_path / "ha" / "flinkops" / "test" / "removed"  # Flink puts files under <storageDir>/<cluster-id>
    files.mkdir(parents=True)
    (files / "submittedExecutionPlan123").write_bytes(b"x")
    neighbour = tmp_path / "ha" / "flinkops" / "test" / "other"
    neighbour.mkdir()
    with ZooKeeperClient(server.connect_string) as zk:
        zk.create(f"{ha.path}/jobs/j/checkpoints/1", parents=True)
        zk.create(f"{ha.latch_path}/_c_a-latch-", ephemeral=True, sequential=True, parents=True)
        assert remove_cluster_metadata(ha) == 8  # removed, jobs, j, checkpoints, 1, leader, latch, latch node
        assert zk.exists(ha.path) is None and zk.exists("/flink/flinkops/test") is not None
    assert not files.exists() and neighbour.is_dir()
    assert remove_cluster_metadata(ha) == 0, "idempotent"
