"""The dev ZooKeeper server, the small client and the HA helpers without a running server: a taken port, connect
strings, no server to reach, what Flink serialised, session ids in logs. Against a real ZooKeeper:
tests/integration/test_zookeeper_live.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer
from flinkops.errors import RuntimeFailure
from flinkops.runtimes.local.ha import leader_address, zookeeper_sessions_in_logs
from flinkops.runtimes.local.zookeeper import (
    ZooKeeperClient,
    ZooKeeperError,
    ZooKeeperUnavailable,
    parse_connect_string,
)
from support.ha import CONNECTION_INFO

# ------------------------------------------------------------------------------------------------ server


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        zk = ZooKeeperServer(tmp_path / "zk", port=port)
        with pytest.raises(RuntimeFailure, match=f"port {port} on 127.0.0.1 is already in use"):
            zk.start()
    assert zk.pid() is None and not zk.healthy()


# ------------------------------------------------------------------------------------------------ client


def test_connect_strings_parse_hosts_ports_and_chroot() -> None:
    assert parse_connect_string("a:1,b:2/apps/x") == ([("a", 1), ("b", 2)], "/apps/x")
    assert parse_connect_string("zk") == ([("zk", 2181)], "")
    with pytest.raises(ZooKeeperError):
        parse_connect_string(",")


def test_no_server_is_zookeeper_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ZooKeeperUnavailable), ZooKeeperClient(f"127.0.0.1:{port}", timeout=1):
        pass


# ------------------------------------------------------------------------------------------- HA helpers


def test_leader_address_reads_what_flink_serialized() -> None:
    assert leader_address(CONNECTION_INFO) == "http://127.0.0.1:58079"
    assert leader_address(b"") is None and leader_address(b"not java") is None


def test_session_ids_are_read_from_a_jobmanager_log(tmp_path: Path) -> None:
    (tmp_path / "jobmanager.out").write_text(
        "2026-01-01 INFO ClientCnxn [] - Session establishment complete on server localhost/127.0.0.1:2181, "
        "session id = 0x100004f08fe0026, negotiated timeout = 6000\n"
        "noise\n"
        "2026-01-01 INFO ClientCnxn [] - Session establishment complete on server localhost/127.0.0.1:2181, "
        "session id = 0xffffffffffffffff, negotiated timeout = 6000\n"
    )
    (tmp_path / "other.txt").write_text("session id = 0x1")
    assert zookeeper_sessions_in_logs(tmp_path) == [0x100004F08FE0026, -1]
    assert zookeeper_sessions_in_logs(tmp_path / "missing") == []
