#!/usr/bin/env bash
# `make test`: static checks, unit tests, then integration tests on real Flink processes.
# Fails loudly when a real dependency (Java, the Flink distribution) cannot be set up; never skips silently.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "ruff"
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
step "mypy --strict"
.venv/bin/mypy
step "import-linter (layer contracts)"
.venv/bin/lint-imports
[ "${1:-}" = "--static-only" ] && exit 0

step "preflight: Java and the Flink distribution"
java -version 2>&1 | head -1
$PY -c 'from flinkops.flink.distribution import find_distribution as f; d=f(); print("Flink", d.version, "at", d.home)'

# Tests get their own home so a running demo is never touched.
export FLINKOPS_HOME="$(mktemp -d -t flinkops-test-XXXXXX)"
trap 'rm -rf "$FLINKOPS_HOME"' EXIT
step "pytest (unit + integration on real Flink)"
$PY -m pytest tests -q -p no:cacheprovider --durations=15
