"""Fixtures shared by the unit tests of the service layer and the CLI in this process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.service import TestTarget, cli_on


@pytest.fixture
def target(tmp_path: Path) -> TestTarget:
    """A local target in a fresh home: the real SQLite store, a manual clock, a controller that never starts and
    no preflight of local files. A module that needs another one (the real preflight, the CLI on it) overrides
    this fixture."""
    return TestTarget(tmp_path / "home")


@pytest.fixture
def cli(target: TestTarget, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in this process (``CliRunner``), on ``target`` (whose controller never starts)."""
    cli_on(target, monkeypatch)
    return CliRunner()
