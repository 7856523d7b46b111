"""Fixtures for tests on real Flink processes: a private flinkops home with its controller daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
