"""A spec shaped like the reference operator's basic example runs unchanged on the local runtime (issue 12).

No ``entryClass`` (Flink takes the jar's Main-Class), the jar named inside the official image
(``local:///opt/flink/examples/streaming/StateMachineExample.jar``, made here from Flink's published examples on
first use), an image, a service account and pod resources that mean nothing locally, parallelism 2 and
checkpointing. It must reach STABLE with its job RUNNING and checkpoints completing; ``plan`` and ``describe``
say what the image path became. The first run fetches the example artifact with Maven (cached afterwards).

The Python example's layout too: the image's flink-python jar, the script under ``/opt/flink/usrlib/`` (here the
YAML's directory) and ``-pyclientexec`` naming an interpreter with PyFlink (the image's ``/usr/local/bin/python3``
does not exist here: the preflight refuses it, exit 2, tested in ``tests/unit/test_local_preflight.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from integration.flinkops_cli import Flinkops

pytestmark = pytest.mark.integration

BASIC = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: basic-example
spec:
  image: flink:2.2
  flinkVersion: v2_2
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    execution.checkpointing.interval: 5 s
    state.checkpoints.dir: file://STATE/checkpoints
    state.savepoints.dir: file://STATE/savepoints
  serviceAccount: flink
  jobManager:
    resource:
      memory: "1024m"
      cpu: 1
  taskManager:
    resource:
      memory: "1024m"
      cpu: 1
  job:
    jarURI: local:///opt/flink/examples/streaming/StateMachineExample.jar
    parallelism: 2
    upgradeMode: last-state
"""


def test_the_basic_example_runs_unchanged_to_stable(flinkops: Flinkops, tmp_path: Path) -> None:
    spec = tmp_path / "basic.yaml"
    spec.write_text(BASIC.replace("STATE", str(tmp_path / "state")))

    started = time.monotonic()
    planned = flinkops.ok("plan", "-f", str(spec), timeout=600)  # fetches the example on first use
    plan_s = time.monotonic() - started
    assert "StateMachineExample.jar →" in planned and "flink-examples-streaming" in planned

    started = time.monotonic()
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    status = flinkops.wait_lifecycle("basic-example", "STABLE", timeout=300)["status"]
    stable_s = time.monotonic() - started
    assert status["jobStatus"]["state"] == "RUNNING"
    assert not status.get("error")

    checkpoints = tmp_path / "state" / "checkpoints"
    flinkops.wait_for("basic-example", lambda _: any(checkpoints.glob("*/chk-*/_metadata")), 90, "a checkpoint")

    described = flinkops.ok("describe", "basic-example")
    assert "local:///opt/flink/examples/streaming/StateMachineExample.jar →" in described
    assert "StateMachineExample" in described
    print(f"\nbasic example: plan {plan_s:.1f} s (first use fetches the example), apply → STABLE {stable_s:.1f} s")

    flinkops.ok("delete", "basic-example")
    assert flinkops.get("basic-example") is None


PYTHON = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: python-example
spec:
  image: flink-python-example:latest
  flinkVersion: v2_2
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "1"
  serviceAccount: flink
  jobManager:
    resource:
      memory: "1024m"
      cpu: 1
  taskManager:
    resource:
      memory: "1024m"
      cpu: 1
  job:
    jarURI: local:///opt/flink/opt/flink-python_2.12-1.16.1.jar # a placeholder in the reference too
    entryClass: "org.apache.flink.client.python.PythonDriver"
    args: ["-pyclientexec", "INTERPRETER", "-py", "/opt/flink/usrlib/python_demo.py"]
    parallelism: 1
    upgradeMode: stateless
"""

# An unbounded job: generated rows into a sink that drops them (the reference's demo is a tiny Table API job too).
SCRIPT = """\
from pyflink.table import EnvironmentSettings, TableEnvironment

env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
env.execute_sql("CREATE TABLE numbers (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')")
env.execute_sql("CREATE TABLE nowhere (n BIGINT) WITH ('connector' = 'blackhole')")
env.execute_sql("INSERT INTO nowhere SELECT n * 2 FROM numbers")
"""


def test_the_python_example_layout_runs_to_stable(flinkops: Flinkops, tmp_path: Path) -> None:
    (tmp_path / "python_demo.py").write_text(SCRIPT)
    spec = tmp_path / "python-example.yaml"
    spec.write_text(PYTHON.replace("INTERPRETER", sys.executable))

    planned = flinkops.ok("plan", "-f", str(spec))
    assert f"/opt/flink/usrlib/python_demo.py → {tmp_path / 'python_demo.py'}" in planned

    started = time.monotonic()
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    status = flinkops.wait_lifecycle("python-example", "STABLE", timeout=300)["status"]
    print(f"\npython example: apply → STABLE {time.monotonic() - started:.1f} s")
    assert status["jobStatus"]["state"] == "RUNNING"
    flinkops.ok("delete", "python-example")


SESSION = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: basic-session-deployment
spec:
  image: flink:2.2
  flinkVersion: v2_2
  jobManager:
    resource:
      memory: "1024m"
      cpu: 1
  taskManager:
    resource:
      memory: "1024m"
      cpu: 1
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: basic-session-job
spec:
  deploymentName: basic-session-deployment
  job:
    jarURI: local:///opt/flink/examples/streaming/TopSpeedWindowing.jar
    parallelism: 1
    upgradeMode: stateless
"""


def test_a_session_job_without_entry_class_runs_the_jars_main_class(flinkops: Flinkops, tmp_path: Path) -> None:
    spec = tmp_path / "session.yaml"
    spec.write_text(SESSION)
    started = time.monotonic()
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    job = flinkops.wait_lifecycle("basic-session-job", "STABLE", timeout=300)["status"]
    print(f"\nsession example: apply → STABLE {time.monotonic() - started:.1f} s")
    assert job["jobStatus"]["state"] == "RUNNING"
    assert job["jobStatus"]["jobName"] == "CarTopSpeedWindowingExample"  # the name TopSpeedWindowing's main gives
    flinkops.ok("delete", "basic-session-job")
    flinkops.ok("delete", "basic-session-deployment")
