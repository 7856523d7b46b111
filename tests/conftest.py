"""Shared test set-up: make ``tests/support`` importable (as ``support``) for every test directory, and share the
work out between parallel workers.

Fixtures that start processes live next to the tests that need them: tests/integration/conftest.py (controller
daemons, ZooKeeper, the data plane) and tests/kubernetes/conftest.py (the control plane); tests/unit starts none.

``make test`` runs two pytest-xdist workers (``-n 2``): most of a real-Flink test is spent waiting for records,
checkpoints and JVM starts, so two at a time finish in a little over half the time on two cores. Work is handed
out in groups (``_group``), each run whole by one worker:

* the modules on the session's data plane (Kafka, MinIO, ZooKeeper) form one group, so the workers do not each
  start a copy;
* the modules on the real Kubernetes node (``_NODE_MODULES``: the node is one per machine) form another, the
  longest: it starts first and its worker takes nothing else until it nearly ends;
* the other tests/kubernetes modules (the API server alone) form a third, on a control plane of their own (about
  10 s to start), so they run beside the node's group instead of before it on the same worker;
* the stateful lifecycle tests are a group each (each deploys its own job, and they are the longest);
* every other module is one group, so its module fixtures (a controller daemon, say) start once.

Groups are queued longest first, so a long one does not end up last on one worker while the other idles.
Grouping is by node id on the controlling process (which collects nothing); each worker checks that every test
using the data plane is in a data-plane module and every test using the node in a node module, so a new module
cannot silently start a second copy (or wait for the machine's one node behind the other worker).
Each worker gets its own ``FLINKOPS_HOME`` below the one the run was given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from support.gateway import Pki
    from support.oidc import OidcProvider

sys.path.insert(0, str(Path(__file__).parent))

# No test process may ask a cloud's instance metadata service (169.254.169.254) for credentials or a region: the
# AWS SDKs (boto3 in flinkops' S3 listings, the Java SDK in Flink's S3 plugins) try it when they are given no
# credentials (an operator started without keys, as some tests start it), and on this machine that address answers
# from off the machine. Every process a test starts inherits this; the node's pods are fenced on their own.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# tests/airflow runs only in the Airflow environment (./.venv-airflow, a step of its own in scripts/test.sh; see
# tests/airflow/conftest.py): the main environment has no Airflow, so its runs never collect that directory, and
# naming it there is an error rather than an empty run. The `airflow` command next to the interpreter tells them
# apart (not an import check: tests/, on sys.path, holds a directory called airflow).
_AIRFLOW_TESTS = Path(__file__).parent / "airflow"
_IN_AIRFLOW_ENV = (Path(sys.executable).parent / "airflow").is_file()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not _IN_AIRFLOW_ENV and collection_path == _AIRFLOW_TESTS:
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    if _IN_AIRFLOW_ENV:
        return
    for arg in config.args:
        target = Path(arg.split("::", 1)[0]).resolve()
        if target == _AIRFLOW_TESTS or _AIRFLOW_TESTS in target.parents:
            raise pytest.UsageError(
                f"{arg} needs Airflow: run it with ./.venv-airflow/bin/python -m pytest (scripts/prefetch.py, which "
                "`make test` runs, makes that environment)"
            )


_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and os.environ.get("FLINKOPS_HOME"):
    _home = Path(os.environ["FLINKOPS_HOME"]) / _WORKER
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["FLINKOPS_HOME"] = str(_home)

# The modules whose tests use the session's data plane (the fixtures below); each worker checks this list.
_DATA_PLANE_MODULES = {
    "tests/integration/test_autoscaler_live.py",
    "tests/integration/test_data_plane_errors.py",
    "tests/integration/test_dev_services_live.py",
    "tests/integration/test_fraud_pipeline.py",
    "tests/integration/test_ha.py",
    "tests/integration/test_lake_and_batch.py",
    "tests/integration/test_local_runtime_ha_live.py",
    "tests/integration/test_zookeeper_live.py",
}
_DATA_PLANE_FIXTURES = {"data_plane", "data_plane_flinkops", "zookeeper"}
# The modules whose tests run pods on the real node (tests/kubernetes/conftest.py's ``node`` and ``stack``).
_NODE_MODULES = {
    "tests/kubernetes/test_faults_on_node.py",
    "tests/kubernetes/test_flink_on_node.py",
    "tests/kubernetes/test_job_chart_on_node.py",
    "tests/kubernetes/test_lifecycle_on_node.py",
    "tests/kubernetes/test_node_live.py",
    "tests/kubernetes/test_secrets_on_node.py",
    "tests/kubernetes/test_session_and_batch_on_node.py",
}
_NODE_FIXTURES = {"node", "stack"}
_ONE_GROUP_PER_TEST = "tests/integration/test_stateful_lifecycle.py"
# Queued first, in this order: the groups that take longest (the node and Flink on it: ten minutes and more; the
# data plane's and the API server's: a few minutes; see the per-module times).
_AIRFLOW = "tests/integration/test_airflow_provider.py"  # tests/airflow on a real Airflow, about 2-3 minutes
_FIRST = ("kube-node", "data-plane", "kube-api", _AIRFLOW, _ONE_GROUP_PER_TEST)


def _group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module in _DATA_PLANE_MODULES:
        return "data-plane"
    if module in _NODE_MODULES:
        return "kube-node"
    if module.startswith("tests/kubernetes/"):
        return "kube-api"
    return nodeid if module == _ONE_GROUP_PER_TEST else module


def _rank(item: pytest.Item) -> int:
    group = _group(item.nodeid)
    module = item.nodeid.split("::", 1)[0]
    for rank, first in enumerate(_FIRST):
        if first in (group, module):
            return rank
    return len(_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check the data-plane and node lists, then queue the longest groups first (a stable sort keeps the rest in
    collection order). In the node's group the tests on the API server alone come first: the node starts after
    them, so their pods (seeds with images the node lacks and CPU it has not) never land on it."""
    for fixtures, group, listed in (
        (_DATA_PLANE_FIXTURES, "data-plane", "_DATA_PLANE_MODULES"),
        (_NODE_FIXTURES, "kube-node", "_NODE_MODULES"),
    ):
        strays = sorted(
            {
                item.nodeid.split("::", 1)[0]
                for item in items
                if fixtures & set(getattr(item, "fixturenames", ())) and _group(item.nodeid) != group
            }
        )
        if strays:
            raise pytest.UsageError(f"add {', '.join(strays)} to {listed} in tests/conftest.py")
    items.sort(key=lambda item: (_rank(item), _group(item.nodeid) == "kube-node" and "node" in item.fixturenames))


@pytest.hookimpl(optionalhook=True)  # the Airflow environment (tests/airflow) runs pytest without xdist
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


# ------------------------------------------------------------------ the gateway's identity providers, per module


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """A real OpenID Connect provider on 127.0.0.1 (``support.oidc``), one per test module."""
    from support.oidc import oidc_provider

    with oidc_provider() as running:
        yield running


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A certificate authority with the seed's client and server certificates (``support.gateway.pki``)."""
    from support.gateway import pki

    return pki(tmp_path_factory.mktemp("pki"))
