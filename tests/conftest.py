"""Shared test set-up: make ``tests/support`` importable (as ``support``) for every test directory, and share the
work out between parallel workers.

Fixtures that start processes live next to the tests that need them: tests/integration/conftest.py (controller
daemons, ZooKeeper, the data plane) and tests/kubernetes/conftest.py (the control plane); tests/unit starts none.

``make test`` runs two pytest-xdist workers (``-n 2``): most of a real-Flink test is spent waiting for records,
checkpoints and JVM starts, so two at a time finish in a little over half the time on two cores. Work is handed
out in groups (``_group``), each run whole by one worker:

* the modules on the session's data plane (Kafka, MinIO, ZooKeeper) form one group and tests/kubernetes (the
  control plane) another, so the workers do not each start a copy;
* the stateful lifecycle tests are a group each (each deploys its own job, and they are the longest);
* every other module is one group, so its module fixtures (a controller daemon, say) start once.

Groups are queued longest first, so a long one does not end up last on one worker while the other idles.
Grouping is by node id on the controlling process (which collects nothing); each worker checks that every test
using the data plane is in a data-plane module, so a new module cannot silently start a second copy.
Each worker gets its own ``FLINKOPS_HOME`` below the one the run was given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and os.environ.get("FLINKOPS_HOME"):
    _home = Path(os.environ["FLINKOPS_HOME"]) / _WORKER
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["FLINKOPS_HOME"] = str(_home)

# The modules whose tests use the session's data plane (the fixtures below); each worker checks this list.
_DATA_PLANE_MODULES = {
    "tests/integration/test_data_plane_errors.py",
    "tests/integration/test_dev_services_live.py",
    "tests/integration/test_fraud_pipeline.py",
    "tests/integration/test_ha.py",
    "tests/integration/test_lake_and_batch.py",
    "tests/integration/test_local_runtime_ha_live.py",
    "tests/integration/test_zookeeper_live.py",
}
_DATA_PLANE_FIXTURES = {"data_plane", "data_plane_flinkops", "zookeeper"}
_ONE_GROUP_PER_TEST = "tests/integration/test_stateful_lifecycle.py"
# Queued first, in this order: the groups that take longest (kube: the control plane, the node and Flink on it;
# a few minutes each, see the per-module times).
_FIRST = ("kube", "data-plane", _ONE_GROUP_PER_TEST)


def _group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module in _DATA_PLANE_MODULES:
        return "data-plane"
    if module.startswith("tests/kubernetes/"):
        return "kube"
    return nodeid if module == _ONE_GROUP_PER_TEST else module


def _rank(item: pytest.Item) -> int:
    group = _group(item.nodeid)
    module = item.nodeid.split("::", 1)[0]
    for rank, first in enumerate(_FIRST):
        if first in (group, module):
            return rank
    return len(_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check the data-plane list, then queue the longest groups first (a stable sort keeps the rest in
    collection order). In the kube group the tests on the API server alone come first: the node starts after
    them, so their pods (seeds with images the node lacks and CPU it has not) never land on it."""
    strays = sorted(
        {
            item.nodeid.split("::", 1)[0]
            for item in items
            if _DATA_PLANE_FIXTURES & set(getattr(item, "fixturenames", ())) and _group(item.nodeid) != "data-plane"
        }
    )
    if strays:
        raise pytest.UsageError(f"add {', '.join(strays)} to _DATA_PLANE_MODULES in tests/conftest.py")
    items.sort(key=lambda item: (_rank(item), _group(item.nodeid) == "kube" and "node" in item.fixturenames))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Hand work out by ``_group``, in collection order (which ``pytest_collection_modifyitems`` made longest
    first)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    config.option.loadscopereorder = False
    return ByGroup(config, log)


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
