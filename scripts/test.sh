#!/usr/bin/env bash
# `make test`: static checks, unit tests, then integration tests on real Flink processes.
# Fails loudly when a real dependency (Java, the Flink distribution) cannot be set up; never skips silently.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "ruff"
.venv/bin/ruff check src tests benchmarks examples scripts providers
.venv/bin/ruff format --check src tests benchmarks examples scripts providers
step "mypy --strict"
.venv/bin/mypy
step "import-linter (layer contracts)"
.venv/bin/lint-imports
[ "${1:-}" = "--static-only" ] && exit 0

step "preflight: Java, Maven, Go, the Flink distribution and the Kubernetes node's packages"
java -version 2>&1 | sed -n 1p
command -v mvn >/dev/null || { echo "error: Maven (mvn) is needed to fetch Kafka, Flink plugins and connectors" >&2; exit 1; }
command -v go >/dev/null || { echo "error: Go (>= 1.26) is needed to build the S3 server (MinIO) and the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for the tests" >&2; exit 1; }
command -v openssl >/dev/null || { echo "error: openssl is needed to make the test Kubernetes control plane's certificates" >&2; exit 1; }
# The Kubernetes tests run pods on a real node: root, cgroups, and the Debian packages of
# flinkops.dev.node.binaries.DEBIAN_PACKAGES (scripts/bootstrap.sh installs them); the message says what is missing.
$PY -c 'import sys
from flinkops.dev.node.binaries import require_host_tools
from flinkops.errors import RuntimeFailure
try:
    require_host_tools()
except RuntimeFailure as exc:
    sys.exit(f"error: {exc}")'
mvn -v 2>/dev/null | sed -n 1p
go version
$PY -c 'from flinkops.flink.distribution import find_distribution as f; d=f(); print("Flink", d.version, "at", d.home)'

# The data plane the integration tests run on: fetched and built once, cached in ~/.cache/flinkops.
step "data plane: Kafka, MinIO, Kubernetes (control plane, node, Flink image), the S3 plugins, the Kafka connector and the example jobs (cached after the first run)"
$PY scripts/prefetch.py

# The Airflow provider is typed against Airflow itself, which lives in its own environment (made just above).
step "mypy --strict: the Airflow provider, against Airflow"
.venv/bin/mypy --config-file providers/airflow/pyproject.toml --python-executable .venv-airflow/bin/python

# Tests get their own home so a running demo is never touched.
export FLINKOPS_HOME="$(mktemp -d -t flinkops-test-XXXXXX)"
trap 'rm -rf "$FLINKOPS_HOME"' EXIT
step "pytest (unit + integration on real Flink)"
$PY -m pytest tests -q -p no:cacheprovider --durations=15 -n 2
