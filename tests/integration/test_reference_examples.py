"""The reference operator's basic example runs unchanged on the local runtime (issue 12): the corpus's
``basic.yaml`` (see below), with checkpointing and ``last-state`` upgrades added.

No ``entryClass`` (Flink takes the jar's Main-Class), the jar named inside the official image
(``local:///opt/flink/examples/streaming/StateMachineExample.jar``, made here from Flink's published examples on
first use), an image, a service account and pod resources that mean nothing locally, parallelism 2 and
checkpointing. It must reach STABLE with its job RUNNING and checkpoints completing; ``plan`` and ``describe``
say what the image path became. The first run fetches the example artifact with Maven (cached afterwards).

Beside it, a table example of the image (``examples/table/WordCountSQLExample.jar``, made from Flink's published
``flink-examples-table``) runs to FINISHED and STABLE.

Then the other examples that need no external system, each from its own reference-shaped file under
``tests/data/reference_examples/`` (the corpus that ``tests/unit/test_reference_corpus.py`` plans and lints):
checkpointing with Kubernetes HA on a hostPath volume, reactive mode, a custom log4j configuration, and a session
cluster with two jobs in one file. The one change to each file is where ``/flink-data`` (the pod's hostPath
volume) is: a directory of the test instead of the host's root. Pod templates and both ingress shapes are not run
here: they are Kubernetes-only, and ``tests/unit/test_reference_corpus.py`` shows that the local runtime starts
for them exactly what it starts for the basic example (same configuration, files, command lines).

The Python example's layout too (the corpus's ``flink-python-example/``, its interpreter the one change): the
image's flink-python jar, the script under ``/opt/flink/usrlib/`` (here the
YAML's directory) and ``-pyclientexec`` naming an interpreter with PyFlink (the image's ``/usr/local/bin/python3``
does not exist here: the preflight refuses it, exit 2, tested in ``tests/unit/test_local_preflight.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.flinkops_cli import Flinkops, status_of

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent.parent / "data" / "reference_examples"


def corpus_copy(file: str, into: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy in ``into`` of a corpus file of one document, changed by ``edit``."""
    document = yaml.safe_load((CORPUS / file).read_text())
    edit(document)
    target = into / Path(file).name
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


#: A table example as a reference-style spec would name it: the image's jar, no entryClass, a bounded job.
TABLE_EXAMPLE = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: ref-table
spec:
  image: flink:2.2
  flinkVersion: v2_2
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "1"
  serviceAccount: flink
  jobManager:
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1024m, cpu: 0.5}
  job:
    jarURI: local:///opt/flink/examples/table/WordCountSQLExample.jar
    parallelism: 1
    upgradeMode: stateless
"""


def test_the_basic_example_runs_unchanged_to_stable(flinkops: Flinkops, tmp_path: Path) -> None:
    """With it, side by side, a table example from the image's ``examples/table/`` (a bounded SQL word count):
    FINISHED and STABLE, its jar made from Flink's published ``flink-examples-table``."""

    def with_checkpoints(document: dict[str, Any]) -> None:
        document["spec"]["flinkConfiguration"].update(
            {
                "execution.checkpointing.interval": "5 s",
                "state.checkpoints.dir": f"file://{tmp_path}/state/checkpoints",
                "state.savepoints.dir": f"file://{tmp_path}/state/savepoints",
            }
        )
        document["spec"]["job"]["upgradeMode"] = "last-state"

    spec = corpus_copy("basic.yaml", tmp_path, with_checkpoints)

    started = time.monotonic()
    planned = flinkops.ok("plan", "-f", str(spec), timeout=600)  # fetches the example on first use
    plan_s = time.monotonic() - started
    assert "StateMachineExample.jar →" in planned and "flink-examples-streaming" in planned
    table = tmp_path / "table.yaml"
    table.write_text(TABLE_EXAMPLE)
    assert "flink-examples-table" in flinkops.ok("plan", "-f", str(table), timeout=600)

    started = time.monotonic()
    flinkops.ok("apply", "-f", str(table))  # runs beside the basic example
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    status = flinkops.wait_lifecycle("ref-basic", "STABLE", timeout=300)["status"]
    stable_s = time.monotonic() - started
    assert status["jobStatus"]["state"] == "RUNNING"
    assert not status.get("error")

    checkpoints = tmp_path / "state" / "checkpoints"
    flinkops.wait_for("ref-basic", lambda _: any(checkpoints.glob("*/chk-*/_metadata")), 90, "a checkpoint")

    described = flinkops.ok("describe", "ref-basic")
    assert "local:///opt/flink/examples/streaming/StateMachineExample.jar →" in described
    assert "StateMachineExample" in described
    print(f"\nbasic example: plan {plan_s:.1f} s (first use fetches the example), apply → STABLE {stable_s:.1f} s")

    finished = flinkops.wait_for(
        "ref-table", lambda r: status_of(r).get("lifecycleState") == "STABLE", 120, "the table example STABLE"
    )
    table_s = time.monotonic() - started
    assert status_of(finished)["jobStatus"]["state"] == "FINISHED" and not status_of(finished).get("error")
    print(f"table example (WordCountSQLExample) beside it: apply → FINISHED/STABLE {table_s:.1f} s")
    flinkops.ok("delete", "ref-table")

    flinkops.ok("delete", "ref-basic")
    assert flinkops.get("ref-basic") is None


def test_the_python_example_layout_runs_to_stable(flinkops: Flinkops, tmp_path: Path) -> None:
    shutil.copy(CORPUS / "flink-python-example" / "python_demo.py", tmp_path)

    def with_this_interpreter(document: dict[str, Any]) -> None:
        args = document["spec"]["job"]["args"]
        args[args.index("-pyclientexec") + 1] = sys.executable  # the image's /usr/local/bin/python3 is not here

    spec = corpus_copy("flink-python-example/python-example.yaml", tmp_path, with_this_interpreter)

    planned = flinkops.ok("plan", "-f", str(spec))
    assert f"/opt/flink/usrlib/python_demo.py → {tmp_path / 'python_demo.py'}" in planned

    started = time.monotonic()
    flinkops.ok("apply", "-f", str(spec), "--wait", "--timeout", "300", timeout=400)
    status = flinkops.wait_lifecycle("ref-python", "STABLE", timeout=300)["status"]
    print(f"\npython example: apply → STABLE {time.monotonic() - started:.1f} s")
    assert status["jobStatus"]["state"] == "RUNNING"
    flinkops.ok("delete", "ref-python")


def names_in(text: str) -> list[str]:
    """The metadata names of a corpus file's documents, in order (each file has one name per document)."""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:")]


def apply_example(flinkops: Flinkops, tmp_path: Path, file: str) -> None:
    """Apply a corpus file, its ``/flink-data`` volume made a test directory (the one change to the file)."""
    text = (CORPUS / file).read_text().replace("file:///flink-data/", f"file://{tmp_path}/flink-data/")
    spec = tmp_path / Path(file).name
    spec.write_text(text)
    flinkops.ok("apply", "-f", str(spec))


def wait_stable(flinkops: Flinkops, file: str, started: float) -> dict[str, dict[str, Any]]:
    """Wait until every resource of a corpus file is STABLE with its job RUNNING; their status."""
    statuses = {
        name: flinkops.wait_lifecycle(name, "STABLE", timeout=300)["status"]
        for name in names_in((CORPUS / file).read_text())
    }
    for name, status in statuses.items():
        assert not status.get("error"), (name, status.get("error"))
        if "jobStatus" in status and status["jobStatus"].get("state"):
            assert status["jobStatus"]["state"] == "RUNNING", (name, status["jobStatus"])
    print(f"\n{file}: apply → STABLE {time.monotonic() - started:.1f} s")
    return statuses


def run_example(flinkops: Flinkops, tmp_path: Path, file: str) -> dict[str, dict[str, Any]]:
    """Apply a corpus file and wait until every resource in it is STABLE with its job RUNNING."""
    started = time.monotonic()
    apply_example(flinkops, tmp_path, file)
    return wait_stable(flinkops, file, started)


def delete_all(flinkops: Flinkops, file: str) -> None:
    for name in reversed(names_in((CORPUS / file).read_text())):  # jobs before their session cluster
        flinkops.ok("delete", name)
        assert flinkops.get(name) is None


def test_checkpointing_with_kubernetes_ha_runs_as_is(flinkops: Flinkops, tmp_path: Path) -> None:
    run_example(flinkops, tmp_path, "basic-checkpoint-ha.yaml")
    checkpoints = tmp_path / "flink-data" / "checkpoints"
    flinkops.wait_for(
        "ref-checkpoint-ha", lambda _: any(checkpoints.glob("*/chk-*/_metadata")), 90, "a checkpoint in /flink-data"
    )
    # What the example's HA is for: a JobManager that dies is replaced and the job resumes from its checkpoint.
    current = flinkops.get("ref-checkpoint-ha")
    assert current is not None
    before = current["status"]["jobStatus"]["jobId"]
    [jobmanager] = flinkops.processes("ref-checkpoint-ha", "jobmanager")
    os.kill(jobmanager, signal.SIGKILL)
    killed = time.monotonic()

    def resumed(resource: dict[str, Any] | None) -> bool:
        job = (resource or {}).get("status", {}).get("jobStatus", {})
        return job.get("jobId") not in (None, before) and job.get("state") == "RUNNING"

    after = flinkops.wait_for("ref-checkpoint-ha", resumed, 120, "the job resumed after a JobManager kill")
    assert after is not None
    assert f"/{before}/chk-" in after["status"]["jobStatus"]["upgradeSavepointPath"]
    print(
        f"checkpoint-ha example: JobManager SIGKILL → job RUNNING from its checkpoint {time.monotonic() - killed:.1f} s"
    )
    delete_all(flinkops, "basic-checkpoint-ha.yaml")


def test_reactive_mode_and_a_custom_log4j_configuration_run_as_is(flinkops: Flinkops, tmp_path: Path) -> None:
    """Reactive mode and a custom log4j configuration, applied together (they are independent, and one machine
    runs them side by side): each STABLE with its job RUNNING, and Flink logs with the example's log4j
    configuration (root level DEBUG)."""
    files = ("basic-reactive.yaml", "custom-logging.yaml")
    started = time.monotonic()
    for file in files:
        apply_example(flinkops, tmp_path, file)
    for file in files:
        wait_stable(flinkops, file, started)
    logs = list((flinkops.home / "clusters").glob("default/ref-custom-logging/log/jobmanager-*/*.log"))
    assert logs, "no JobManager log"
    assert any(" DEBUG " in log.read_text(errors="replace") for log in logs)  # the example's root level
    for file in files:
        delete_all(flinkops, file)


def test_a_session_cluster_and_its_jobs_in_one_file_run_as_is(flinkops: Flinkops, tmp_path: Path) -> None:
    statuses = run_example(flinkops, tmp_path, "basic-session-deployment-and-job.yaml")
    # No entryClass in the first job: the jar's Main-Class ran (the name TopSpeedWindowing's main gives its job).
    assert statuses["ref-session-cluster-job"]["jobStatus"]["jobName"] == "CarTopSpeedWindowingExample"
    delete_all(flinkops, "basic-session-deployment-and-job.yaml")
