"""The shared plumbing of the dev servers (``flinkops.dev.process``) and of the javac builds
(``flinkops.flink.javabuild``) without starting a process: ports, pid files and the sources digest. Signalling real
processes and compiling with ``javac`` are tests/integration/test_dev_process_live.py."""

from __future__ import annotations

import socket
from pathlib import Path

from flinkops.dev.process import (
    free_port,
    neighbour_port,
    port_in_use,
    read_record,
    recorded_pid,
    write_record,
)
from flinkops.flink import javabuild


def test_ports_on_loopback() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert port_in_use(taken)
        assert neighbour_port(taken - 1) != taken
    port = free_port()
    assert not port_in_use(port)


def test_a_pid_file_is_read_field_by_field(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    assert read_record(pid_file) is None and recorded_pid(pid_file) is None
    write_record(pid_file, {"pid": 1, "start_ticks": 2, "port": 3, "note": "text"})
    assert read_record(pid_file, ("pid", "port")) == {"pid": 1, "port": 3}
    assert read_record(pid_file, ("pid", "missing")) is None
    assert not list(tmp_path.glob("*.tmp"))
    pid_file.write_text("{not json")
    assert read_record(pid_file) is None


# ------------------------------------------------------------------------------------------------ javabuild


def test_the_sources_digest_covers_paths_contents_and_identity(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "A.java").write_text("class A {}")
    first = javabuild.sources_digest(tmp_path)
    assert len(first) == 12 and javabuild.sources_digest(tmp_path) == first
    assert javabuild.sources_digest(tmp_path, "release=11") != first
    (tmp_path / "p" / "A.java").write_text("class A { }")
    assert javabuild.sources_digest(tmp_path) != first
