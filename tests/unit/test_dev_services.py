"""DevServices and ``flinkops dev`` without starting anything: the state of nothing running, a taken port, an
already-running service on another port, and argument errors (exit 2). The real servers are exercised in
tests/integration/test_dev_services_live.py."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flinkops.cli.main import app
from flinkops.dev.kafka import api_versions
from flinkops.dev.services import SERVICES, DevServices, check_names
from flinkops.errors import InvalidInput, RuntimeFailure
from flinkops.procs import start_ticks


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLINKOPS_HOME", str(tmp_path))
    return tmp_path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["dev", *args])
    return result.exit_code, result.output


def test_nothing_running(home: Path) -> None:
    services = DevServices(home)
    statuses = services.status()
    assert [s.name for s in statuses] == list(SERVICES)
    for status in statuses:
        assert (status.running, status.healthy, status.pid, status.endpoint) == (False, False, None, None)
        assert status.data_dir == home / "dev" / status.name
    assert services.s3_settings() is None
    assert services.kafka_bootstrap() is None
    assert services.zookeeper_connect() is None
    assert services.down() == []
    assert not (home / "dev" / "kafka").exists()  # reading state creates nothing


def test_service_names_are_checked_and_ordered() -> None:
    assert check_names(["zookeeper", "kafka", "kafka"]) == ["kafka", "zookeeper"]
    with pytest.raises(InvalidInput) as caught:
        check_names(["kafka", "redis"])
    assert "redis" in str(caught.value) and "kafka, s3, zookeeper" in str(caught.value)


@pytest.mark.parametrize(("service", "option"), [("kafka", "--kafka-port"), ("s3", "--s3-port")])
def test_a_taken_port_names_the_port_the_service_and_the_option(
    home: Path, listener: int, service: str, option: str
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        DevServices(home).up([service], {service: listener})
    text = str(caught.value)
    assert f"port {listener}" in text and f"cannot start {service}" in text and option in text
    assert DevServices(home).status([service])[0].running is False


def test_a_taken_port_through_the_cli_exits_1(home: Path, listener: int) -> None:
    code, output = cli("up", "zookeeper", "--zookeeper-port", str(listener))
    assert code == 1
    assert f"port {listener}" in output and "--zookeeper-port" in output


def test_a_running_service_on_another_port_is_not_started_twice(home: Path) -> None:
    """A pid file naming a live process (this test's own) counts as a running server; asking for another port
    is an error rather than a second server on the same data."""
    data = home / "dev" / "s3"
    data.mkdir(parents=True)
    me = os.getpid()
    (data / "minio.pid").write_text(json.dumps({"pid": me, "start_ticks": start_ticks(me), "port": 1}))
    (data / "server.json").write_text(json.dumps({"port": 1, "console_port": 2}))
    services = DevServices(home)
    status = services.status(["s3"])[0]
    assert (status.running, status.healthy, status.pid) == (True, False, me)
    with pytest.raises(RuntimeFailure, match=r"s3 already runs on port 1 .*not 2000.*flinkops dev down s3"):
        services.up(["s3"], {"s3": 2000})


def test_api_versions_against_nothing_is_an_os_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        api_versions("127.0.0.1", port, timeout=0.5)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_unknown_service_exits_2_with_the_valid_names(home: Path) -> None:
    for args in (["up", "kafak"], ["down", "s4"], ["status", "zk"], ["logs", "redis"]):
        code, output = cli(*args)
        assert code == 2, (args, output)
        assert "kafka, s3, zookeeper" in output


def test_cli_bad_options_exit_2(home: Path) -> None:
    assert cli("status", "-o", "yaml")[0] == 2
    assert cli("topic", "orders", "--partitions", "0")[0] == 2
    assert cli("up", "--kafka-port", "not-a-number")[0] == 2
    assert cli("logs")[0] == 2


def test_cli_status_and_env_with_nothing_running(home: Path) -> None:
    code, output = cli("status")
    assert code == 0 and "stopped" in output
    code, output = cli("status", "-o", "json")
    assert code == 0
    body = json.loads(output)
    assert [s["name"] for s in body["services"]] == list(SERVICES)
    assert all(s["running"] is False and s["healthy"] is False for s in body["services"])
    assert cli("status", "kafka")[0] == 1  # a named service that is not healthy
    code, output = cli("env")
    assert code == 0 and "export" not in output


def test_cli_commands_that_need_a_running_service_say_how_to_start_it(home: Path) -> None:
    code, output = cli("bucket", "seed")
    assert code == 1 and "flinkops dev up s3" in output
    code, output = cli("topic", "orders")
    assert code == 1 and "flinkops dev up kafka" in output
    code, output = cli("logs", "kafka")
    assert code == 1 and "no log yet" in output


def test_cli_help_teaches(home: Path) -> None:
    code, output = cli("--help")
    assert code == 0
    for word in ("up", "down", "status", "env", "logs", "bucket", "topic", "eval"):
        assert word in output
    code, output = cli("up", "--help")
    assert code == 0 and "--kafka-port" in output and "--s3-port" in output and "--zookeeper-port" in output
