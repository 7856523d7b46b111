"""Shared test set-up: make ``tests/support`` importable, and a real ZooKeeper for the tests that need one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from flinkops.dev.zookeeper import ZooKeeperServer


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """A real ZooKeeper (the one inside the Flink distribution) on a free 127.0.0.1 port, stopped afterwards."""
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()
