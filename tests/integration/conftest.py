"""Fixtures for tests on real processes: a private flinkops home with its controller daemon (per module), and for
the whole session a ZooKeeper, the data plane (Kafka and MinIO) and the test jobs' jars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flinkops.dev.zookeeper import ZooKeeperServer
from integration.flinkops_cli import Flinkops


@pytest.fixture(scope="module")
def flinkops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flinkops]:
    home = tmp_path_factory.mktemp("home")
    cli = Flinkops(home)
    cli.ok("controller", "start")
    try:
        yield cli
    finally:
        listing = cli.run("get", "-A", "-o", "json")
        cli.run("controller", "stop")
        cli.kill_everything()
        assert listing.code == 0, listing.stderr


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """A real ZooKeeper (the one inside the Flink distribution) on a free 127.0.0.1 port, shared by the session
    (one JVM start instead of one per module) and stopped at its end. Tests use their own paths in it and remove
    them; none stops or restarts it."""
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def testjobs() -> Path:
    from support.testjobs import testjobs_jar

    return testjobs_jar()


@pytest.fixture(scope="session")
def data_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Real Kafka (KRaft) and S3 (MinIO) servers from ``flinkops dev``, on free ports, for the whole session.
    Setting them up fails loudly (a missing Maven or Go toolchain is an error, never a skip)."""
    from support.dataplane import start_data_plane

    plane = start_data_plane(tmp_path_factory.mktemp("dataplane"))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def data_plane_flinkops(data_plane: Any) -> Iterator[Flinkops]:
    """A controller whose home is the data plane's: deployments find the dev S3 server and its credentials
    there, as they do after `flinkops dev up` on a user's machine."""
    cli = Flinkops(data_plane.home)
    cli.ok("controller", "start")
    try:
        yield cli
    finally:
        cli.run("controller", "stop")
        cli.kill_everything()


@pytest.fixture(scope="session")
def example_jar() -> Path:
    from flinkops.dev.example_jobs import build_example_jobs

    return build_example_jobs()
