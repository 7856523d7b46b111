"""Fixtures for tests on real Flink processes: a private flinkops home with its controller daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
