"""Fixtures of the Airflow tests: one AIRFLOW_HOME per session (SQLite, migrated once), the DAG files of
``tests/airflow/dags`` copied into its DAGs folder, a StatsD listener its components report to, and (only for the
tests that ask) the real scheduler, dag-processor, triggerer and api-server.

These tests run in the Airflow environment only: ``./.venv-airflow/bin/python -m pytest tests/airflow`` (a step of
scripts/test.sh; :mod:`flinkops.dev.airflow` makes the environment, tests/conftest.py keeps the main run out of
here). This directory must never get an ``__init__.py``: tests/ is on sys.path, and a package named ``airflow``
there would shadow Airflow itself.

Marker ``airflow_cluster``: the test runs on the real scheduler and triggerer (about a minute of start-up on two
busy cores, once per session); ``-m "not airflow_cluster"`` leaves those out.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.airflow import AirflowCluster, AirflowHome, StatsdListener

DAGS = Path(__file__).parent / "dags"
EXAMPLE_DAGS = (
    Path(__file__).resolve().parents[2] / "providers" / "airflow" / "src" / "flinkops_airflow" / "example_dags"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "airflow_cluster: runs on the real Airflow scheduler, dag-processor, triggerer and api-server"
    )


@pytest.fixture(scope="session")
def statsd() -> Iterator[StatsdListener]:
    with StatsdListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def flinkops_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The local runtime the tasks' ``flinkops_default`` connection targets. Its controller is started by the first
    task that applies something (in the Airflow environment, as a worker would); stopped here, by its pid, with
    every cluster process it recorded."""
    from flinkops.wiring.daemon import stop_daemon

    home = tmp_path_factory.mktemp("flinkops-home")
    yield home
    stop_daemon(home)
    for record in home.glob("clusters/*/*/cluster.json"):
        for process in json.loads(record.read_text()).get("processes", []):
            with contextlib.suppress(OSError):
                os.kill(int(process["pid"]), signal.SIGKILL)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, statsd: StatsdListener, flinkops_home: Path) -> AirflowHome:
    connection = {"conn_type": "flinkops", "extra": {"target": "local", "home": str(flinkops_home)}}
    home = AirflowHome(
        tmp_path_factory.mktemp("airflow-home"),
        statsd_port=statsd.port,
        # Three flinkops tasks at once, and a resumed deferred task must not wait for a slot.
        parallelism=4,
        extra_env={"AIRFLOW_CONN_FLINKOPS_DEFAULT": json.dumps(connection), "FLINKOPS_HOME": str(flinkops_home)},
    )
    # The watchdog example reads the REST API through this connection; its Prometheus file goes to the home.
    home.add_env(
        AIRFLOW_CONN_AIRFLOW_API=json.dumps({"conn_type": "http", "host": home.api_url}),
        FLINKOPS_WATCHDOG_PROM_FILE=str(home.root / "metrics" / "watchdog.prom"),
    )
    for dag_file in [*DAGS.glob("*.py"), *EXAMPLE_DAGS.glob("*.py")]:
        shutil.copy(dag_file, home.dags_folder / dag_file.name)
    home.migrate()
    return home


@pytest.fixture(scope="session")
def airflow_cluster(airflow_home: AirflowHome) -> Iterator[AirflowCluster]:
    with airflow_home.cluster() as cluster:
        yield cluster
