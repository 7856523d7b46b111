"""flinkops for Airflow: Flink jobs as tasks that wait for the job's real outcome and never leave a cluster behind.

Airflow finds this provider through the ``apache_airflow_provider`` entry point (``get_provider_info``). The
modules: ``hooks`` (``FlinkopsHook``, connection type ``flinkops``), ``operators`` (``FlinkDeploymentOperator``,
``FlinkSavepointOperator``), ``sensors`` (``FlinkDeploymentSensor``), ``triggers`` (``FlinkDeploymentTrigger``:
it must live in an installed package, since the triggerer cannot import classes defined next to a DAG) and
``links`` (the Flink UI button). Everything they do to resources goes through ``flinkops.service``, the layer the
``flinkops`` CLI uses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "get_provider_info"]

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads (it validates this against its provider-info schema)."""
    integration = "flinkops"
    return {
        "package-name": "airflow-provider-flinkops",
        "name": "flinkops",
        "description": "Stateful Apache Flink jobs run by flinkops, locally or on Kubernetes.",
        "versions": [__version__],
        "integrations": [{"integration-name": integration, "tags": ["service"]}],
        "operators": [{"integration-name": integration, "python-modules": ["flinkops_airflow.operators"]}],
        "sensors": [{"integration-name": integration, "python-modules": ["flinkops_airflow.sensors"]}],
        "hooks": [{"integration-name": integration, "python-modules": ["flinkops_airflow.hooks"]}],
        "triggers": [{"integration-name": integration, "python-modules": ["flinkops_airflow.triggers"]}],
        "connection-types": [
            {
                "connection-type": "flinkops",
                "hook-class-name": "flinkops_airflow.hooks.FlinkopsHook",
                "hook-name": "flinkops",
            }
        ],
        "extra-links": ["flinkops_airflow.links.FlinkUILink"],
    }
