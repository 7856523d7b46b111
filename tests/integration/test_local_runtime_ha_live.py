"""How the local runtime sees an HA cluster on a real ZooKeeper: the leader's REST URL from what the leader
published, and the JobManager watch that releases a dead JobManager's ZooKeeper nodes at once. Cluster records
are hand-written (``support.ha``; this test process stands in for a live JobManager, no Flink process is
started). The cases without a ZooKeeper are tests/unit/test_local_runtime_ha.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.runtimes.local.zookeeper import ZooKeeperClient
from support.ha import KEY, PATH, jobmanager, runtime, write_record

pytestmark = pytest.mark.integration


def connection_info(url: str) -> bytes:
    """What Flink writes: a Java stream header, a block with writeUTF(url), then (here omitted) the UUID."""
    utf = len(url).to_bytes(2, "big") + url.encode()
    return b"\xac\xed\x00\x05" + b"\x77" + bytes([len(utf)]) + utf


@pytest.fixture
def clean(zookeeper: ZooKeeperServer) -> Iterator[None]:
    yield
    with ZooKeeperClient(zookeeper.connect_string) as zk:
        zk.delete_tree(PATH)


def test_the_rest_url_is_the_leaders_when_it_lives(zookeeper: ZooKeeperServer, tmp_path: Path, clean: None) -> None:
    write_record(
        tmp_path,
        zookeeper,
        [jobmanager(0, 1111, True, tmp_path / "jm0"), jobmanager(1, 2222, False, tmp_path / "jm1")],
    )
    rt = runtime(tmp_path)
    observed = rt.observe(KEY)
    assert observed is not None
    assert (observed.jobmanagers_alive, observed.jobmanagers_expected) == (1, 2)
    assert observed.rest_url is None, "no leader published yet"

    with ZooKeeperClient(zookeeper.connect_string) as zk:
        info = f"{PATH}/leader/rest_server/connection_info"
        zk.create(info, connection_info("http://127.0.0.1:2222"), parents=True)
        dead_leader = rt.observe(KEY)
        assert dead_leader is not None and dead_leader.rest_url is None, "the published leader is dead"
        zk.delete(info)
        zk.create(info, connection_info("http://127.0.0.1:1111"))
        live_leader = rt.observe(KEY)
        assert live_leader is not None and live_leader.rest_url == "http://127.0.0.1:1111"


def test_the_watch_releases_a_dead_jobmanagers_latch_while_its_session_still_lives(
    zookeeper: ZooKeeperServer, tmp_path: Path, clean: None
) -> None:
    dead_session = ZooKeeperClient(zookeeper.connect_string)
    standby_session = ZooKeeperClient(zookeeper.connect_string)
    dead_session.open()
    standby_session.open()
    rt = runtime(tmp_path, watch=True)
    try:
        latch = f"{PATH}/leader/latch"
        leader_node = dead_session.create(f"{latch}/_c_a-latch-", ephemeral=True, sequential=True, parents=True)
        standby_node = standby_session.create(f"{latch}/_c_b-latch-", ephemeral=True, sequential=True)
        assert dead_session.session_id is not None
        (tmp_path / "jm0").mkdir()
        (tmp_path / "jm0" / "jobmanager.out").write_text(
            "INFO ClientCnxn [] - Session establishment complete on server localhost/127.0.0.1:1, "
            f"session id = 0x{dead_session.session_id:x}, negotiated timeout = 6000\n"
        )
        write_record(
            tmp_path,
            zookeeper,
            [jobmanager(0, 1111, False, tmp_path / "jm0"), jobmanager(1, 2222, True, tmp_path / "jm1")],
        )
        rt.observe(KEY)  # an HA cluster: starts the watch

        deadline = time.monotonic() + 10
        with ZooKeeperClient(zookeeper.connect_string) as zk:
            while zk.exists(leader_node) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert zk.exists(leader_node) is None, "the dead leader's latch node must be released"
            assert zk.exists(standby_node) is not None, "a live JobManager's node is never touched"
    finally:
        rt.close()
        dead_session.close()
        standby_session.close()
