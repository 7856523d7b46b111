"""Fixtures of the behaviour suites: a fresh ``World`` (controller, fakes and virtual clock) per test."""

from __future__ import annotations

import pytest

from fakes.world import World


@pytest.fixture
def world() -> World:
    return World()
