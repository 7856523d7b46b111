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

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.airflow import AirflowCluster, AirflowHome, StatsdListener

DAGS = Path(__file__).parent / "dags"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "airflow_cluster: runs on the real Airflow scheduler, dag-processor, triggerer and api-server"
    )


@pytest.fixture(scope="session")
def statsd() -> Iterator[StatsdListener]:
    with StatsdListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, statsd: StatsdListener) -> AirflowHome:
    home = AirflowHome(tmp_path_factory.mktemp("airflow-home"), statsd_port=statsd.port)
    for dag_file in DAGS.glob("*.py"):
        shutil.copy(dag_file, home.dags_folder / dag_file.name)
    home.migrate()
    return home


@pytest.fixture(scope="session")
def airflow_cluster(airflow_home: AirflowHome) -> Iterator[AirflowCluster]:
    with airflow_home.cluster() as cluster:
        yield cluster
