# Quick start: `make demo` (run the example locally) and `make test` (the whole suite). Both install first.
SHELL := /bin/bash
export FLINKOPS_HOME ?= $(CURDIR)/.flinkops

.PHONY: install demo demo-stop demo-kafka demo-kafka-stop demo-airflow test check unit integration bench clean

install:
	@bash scripts/bootstrap.sh

demo: install
	@bash scripts/demo.sh

demo-stop:
	-.venv/bin/flinkops delete fraud-scoring
	-.venv/bin/flinkops controller stop

# The full pipeline: Kafka, S3 (MinIO) and ZooKeeper from `flinkops dev`, fraud scoring exactly once on Kafka.
demo-kafka: install
	@bash scripts/demo_kafka.sh

demo-kafka-stop:
	-.venv/bin/flinkops delete fraud-scoring -n payments
	-.venv/bin/flinkops controller stop
	-.venv/bin/flinkops dev down

# One run of the hourly conversions DAG on a real Airflow 3 (its own environment, ./.venv-airflow) and the local
# runtime: the task's state, the job's counters, no Flink process left.
demo-airflow: install
	@bash scripts/demo_airflow.sh

test: install
	@bash scripts/test.sh

# Static checks only (ruff, formatting, mypy --strict, import-linter layer contracts).
check: install
	@bash scripts/test.sh --static-only

unit: install
	.venv/bin/python -m pytest tests/unit tests/behaviour -q

integration: install
	.venv/bin/python -m pytest tests/integration -q

# Each benchmark prints flinkops next to a raw-Flink floor measured in the same run. `make bench ROUNDS=1` for a
# quick pass (recovery.py, upgrade_downtime.py and kubernetes.py also take --quick). kubernetes.py runs the real
# dev node (as root; it waits while a test session uses the machine's node).
ROUNDS ?= 3
bench: install
	.venv/bin/python benchmarks/local_startup.py --rounds $(ROUNDS)
	.venv/bin/python benchmarks/recovery.py --rounds $(ROUNDS)
	.venv/bin/python benchmarks/upgrade_downtime.py --rounds $(ROUNDS)
	.venv/bin/python benchmarks/rescale.py --rounds $(ROUNDS)
	.venv/bin/python benchmarks/fraud_pipeline.py --rounds $(ROUNDS)
	.venv/bin/python benchmarks/operator_scale.py --count 500
	.venv/bin/python benchmarks/idle_cpu.py --count 10
	.venv/bin/python benchmarks/kubernetes.py --rounds $(ROUNDS)

clean: demo-stop
	rm -rf .flinkops examples/*/output
