#!/usr/bin/env bash
# `make demo-airflow`: one run of the hourly conversions DAG (providers/airflow's example) on a real Airflow 3
# and the embedded local runtime; prints the task states, the job's result and that no Flink process is left.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLINKOPS_HOME="${FLINKOPS_HOME:-$PWD/.flinkops}"
.venv/bin/python -m flinkops.dev.airflow >/dev/null   # the Airflow environment (cached after the first run)
exec ./.venv-airflow/bin/python scripts/demo_airflow.py
