"""The flinkops provider for Apache Airflow (distribution ``airflow-provider-flinkops``).

Airflow finds it through the ``apache_airflow_provider`` entry point, which names :func:`get_provider_info`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "get_provider_info"]

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's provider manager reads: the package, its versions and the connection type it adds."""
    return {
        "package-name": "airflow-provider-flinkops",
        "name": "flinkops",
        "description": "Run Apache Flink jobs with flinkops from Airflow: deferrable operators, a sensor, a trigger.",
        "versions": [__version__],
        "connection-types": [
            {"hook-class-name": "flinkops_airflow.hooks.FlinkopsHook", "connection-type": "flinkops"},
        ],
    }
