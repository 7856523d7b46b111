"""Bad input through the real CLI: exit 2, every problem with its field path, and the store unchanged; ``get -o
json`` in the CRD shape, and the test driver's in-process ``get`` answering the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import flinkops
from flinkops.api.models import DeploymentRecord, FlinkDeploymentStatus, JobStatus, LifecycleState
from flinkops.settings import store_path
from flinkops.stores.sqlite import SqliteStore
from integration.flinkops_cli import Flinkops

pytestmark = pytest.mark.integration

# The subprocess runs the flinkops this test imported (a worktree's, not whatever the environment installed).
SOURCE = str(Path(flinkops.__file__).parents[1])

GOOD = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: good
spec:
  flinkVersion: v2_2
  job:
    jarURI: https://jars.example.invalid/job.jar
    parallelism: 1
"""
# (a remote jar: the controller fetches it, so apply's preflight of local files has nothing to check here)


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *args],
        env={"FLINKOPS_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE},
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def stored(home: Path) -> list[dict[str, object]]:
    result = cli(home, "get", "-A", "-o", "json")
    assert result.returncode == 0, result.stderr
    items: list[dict[str, object]] = json.loads(result.stdout)["items"]
    return items


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    # Seed the store with one resource so "unchanged" is a real check (no controller needed for that).
    result = cli(home, "apply", "--no-start-controller", "-f", "-", stdin=GOOD)
    assert result.returncode == 0, result.stderr
    return home


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: v1\nkind: FlinkDeployment\nmetadata: {name: x}\nspec: {}\n", "apiVersion"),
        ("apiVersion: flink.apache.org/v1beta1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n", "kind"),
        ("spec:\n  job: [unclosed\n", "line"),
        (GOOD.replace("parallelism: 1", "parallelism: two"), "spec.job.parallelism"),
        (GOOD.replace("parallelism: 1", "paralelism: 1"), "did you mean 'parallelism'"),
        (GOOD.replace("job:", "job:\n    upgradeMode: fast"), "spec.job.upgradeMode"),
        (GOOD.replace("name: good", "name: Bad_Name"), "metadata.name"),
    ],
)
def test_bad_input_exits_2_with_the_path_and_changes_nothing(home: Path, text: str, expected: str) -> None:
    before = stored(home)
    second = GOOD.replace("name: good", "name: also-new")
    result = cli(home, "apply", "--no-start-controller", "-f", "-", stdin=second + "---\n" + text)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "nothing was changed" in result.stderr
    assert stored(home) == before  # the valid document in the same file was not applied either


def test_every_problem_is_reported_at_once(home: Path) -> None:
    text = GOOD.replace("parallelism: 1", "parallelism: '1'\n    foo: bar\n    state: paused")
    result = cli(home, "apply", "--no-start-controller", "-f", "-", stdin=text)
    assert result.returncode == 2
    for path in ("spec.job.parallelism", "spec.job.foo", "spec.job.state"):
        assert path in result.stderr


_AUTOSCALED = GOOD.replace("  job:", "  flinkConfiguration:\n    job.autoscaler.enabled: 'true'\n{}\n  job:")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("    job.autoscaler.metrics.window: -5 min", 'job.autoscaler.metrics.window"]: must not be negative'),
        ("    job.autoscaler.utilization.target: '1.5'", 'utilization.target"]: must be above 0 and at most 1'),
        ("    job.autoscaler.utilization.target: '0'", 'utilization.target"]: must be above 0 and at most 1'),
        (
            "    job.autoscaler.vertex.min-parallelism: '8'\n    job.autoscaler.vertex.max-parallelism: '4'",
            'vertex.min-parallelism"]: is 8, above vertex.max-parallelism (4)',
        ),
        ("    job.autoscaler.scale-down.max-factor: '1.5'", 'scale-down.max-factor"]: must be above 0 and at most 1'),
    ],
)
def test_bad_autoscaler_settings_exit_2_at_apply_with_the_key(home: Path, settings: str, expected: str) -> None:
    before = stored(home)
    result = cli(home, "apply", "--no-start-controller", "-f", "-", stdin=_AUTOSCALED.format(settings))
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'spec.flinkConfiguration["job.autoscaler.' in result.stderr and expected in result.stderr, result.stderr
    assert stored(home) == before


def test_missing_file_is_invalid_input(home: Path, tmp_path: Path) -> None:
    result = cli(home, "apply", "--no-start-controller", "-f", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr


def test_session_job_pointing_at_a_deployment_not_there_yet_is_accepted(home: Path) -> None:
    # GitOps order: the job may arrive before its session cluster; it waits for it (as the reference's does).
    text = (
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: sj}\n"
        "spec: {deploymentName: nowhere, job: {jarURI: 'https://jars.example.invalid/job.jar', parallelism: 1}}\n"
    )
    result = cli(home, "apply", "--no-start-controller", "-f", "-", stdin=text)
    assert result.returncode == 0, result.stderr


def test_get_json_is_the_crd_shape(home: Path) -> None:
    result = cli(home, "get", "good", "-o", "json")
    body = json.loads(result.stdout)
    assert body["apiVersion"] == "flink.apache.org/v1beta1"
    assert body["kind"] == "FlinkDeployment"
    assert body["metadata"]["generation"] == 1
    assert body["spec"]["job"]["jarURI"] == "https://jars.example.invalid/job.jar"


def test_get_unknown_name_fails(home: Path) -> None:
    result = cli(home, "get", "nope")
    assert result.returncode == 1
    assert "nope" in result.stderr


def test_the_test_drivers_get_is_what_the_cli_prints(home: Path) -> None:
    """``Flinkops.get`` (the poll of every integration test) reads the store in-process; it must answer exactly what
    ``flinkops get NAME -n NAMESPACE -o json`` prints, and None where that fails."""
    store = SqliteStore(store_path(home))
    (good,) = store.list_resources()
    status = FlinkDeploymentStatus(
        lifecycle_state=LifecycleState.STABLE,
        job_status=JobStatus(job_id="a" * 32, state="RUNNING", start_time="1700000000000"),
        cluster_info={"rest-url": "http://127.0.0.1:8081"},
        deployment_history=[DeploymentRecord(generation=1, job_id="a" * 32, started_at=1, running_at=2)],
    )
    store.update_status(good.model_copy(update={"status": status}))
    driver = Flinkops(home)
    for name, namespace in (("good", "default"), ("nope", "default"), ("good", "elsewhere")):
        printed = cli(home, "get", name, "-n", namespace, "-o", "json")
        assert driver.get(name, namespace) == (json.loads(printed.stdout) if printed.returncode == 0 else None)
    found = driver.get("good")
    assert found is not None and found["status"]["jobStatus"]["state"] == "RUNNING"  # not a vacuous comparison
