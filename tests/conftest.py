"""Shared test set-up: make ``tests/support`` importable (as ``support``) for every test directory.

Fixtures that start processes live next to the tests that need them: tests/integration/conftest.py (controller
daemons, ZooKeeper, the data plane) and tests/kubernetes/conftest.py (the control plane); tests/unit starts none.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Wall time per test module (setup, call and teardown added up), slowest first: where the suite's time goes."""
    per_module: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            duration = getattr(report, "duration", None)
            nodeid = getattr(report, "nodeid", "")
            if isinstance(duration, float) and nodeid:
                module = nodeid.split("::", 1)[0]
                per_module[module] = per_module.get(module, 0.0) + duration
    if not per_module:
        return
    terminalreporter.section("time per module")
    for module, seconds in sorted(per_module.items(), key=lambda item: -item[1]):
        if seconds >= 1.0:
            terminalreporter.write_line(f"{seconds:8.1f} s  {module}")
    small = sum(1 for seconds in per_module.values() if seconds < 1.0)
    terminalreporter.write_line(
        f"{'':8}    ({small} more modules under 1 s each; {sum(per_module.values()):.0f} s in all)"
    )
