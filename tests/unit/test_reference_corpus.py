"""Every example the reference operator publishes, as our own spec of the same shape, planned and linted here.

``tests/data/reference_examples/`` holds one file per reference example (same relative path, own names and
comments, ``flinkVersion: v2_2``). Each is run through ``flinkops plan -f`` and ``flinkops lint -f`` in this
process, on a local target whose preflight is the real one (the local Flink distribution; the image's example
jars made from a stand-in for Maven), and ``EXPECTED`` says what each must give: accepted, with the image's
``/opt/flink`` paths mapped to this machine, or exit 2 naming why flinkops cannot run it here. The examples that
are accepted and need no external system run for real in ``tests/integration/test_reference_examples.py``
(the ``runs`` column), but for the ones whose difference from ``basic.yaml`` is Kubernetes-only (pod templates,
ingresses): for those the local runtime is shown here to start exactly what it starts for ``basic.yaml``
(``STARTS_AS_BASIC``). README's "The reference operator's examples" is this table in prose.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fakes.store import FakeStore
from flinkops.api.models import FlinkDeployment
from flinkops.cli.main import app
from flinkops.controller.requests import RequestBuilder
from flinkops.core.planner.types import DeployCluster
from flinkops.flink.distribution import find_distribution
from flinkops.flink.examples import example_jar
from flinkops.provisioning.local import LocalProvisioner
from flinkops.runtimes.local import runtime as local_runtime
from flinkops.runtimes.local.cds import ClassDataSharing
from flinkops.runtimes.local.launch import APPLICATION_MAIN, TASKMANAGER_MAIN, Launcher
from flinkops.runtimes.local.runtime import LocalRuntime
from support.service import TestTarget, cli_on

CORPUS = Path(__file__).parent.parent / "data" / "reference_examples"

#: The reference operator's examples/ directory (its YAML files that describe Flink resources), by path.
REFERENCE_EXAMPLES = (
    "basic.yaml",
    "basic-checkpoint-ha.yaml",
    "basic-ingress.yaml",
    "advanced-ingress.yaml",
    "basic-reactive.yaml",
    "basic-secure.yaml",
    "basic-session.yaml",
    "basic-session-job.yaml",
    "basic-session-deployment-and-job.yaml",
    "basic-session-deployment-only.yaml",
    "basic-session-job-only.yaml",
    "canary.yaml",
    "custom-logging.yaml",
    "pod-template.yaml",
    "pod-template-artifact-fetcher.yaml",
    "standalone_pvc.yaml",
    "autoscaling/autoscaling.yaml",
    "autoscaling/autoscaling-dynamic.yaml",
    "autoscaling/autoscaling-canary.yaml",
    "hpa/basic-hpa.yaml",
    "snapshot/checkpoint.yaml",
    "snapshot/job-from-savepoint.yaml",
    "snapshot/savepoint-already-exists.yaml",
    "snapshot/savepoint-job-defaults.yaml",
    "snapshot/savepoint-job-full-spec.yaml",
    "flink-python-example/python-example.yaml",
    "flink-sql-runner-example/sql-example.yaml",
    "flink-beam-example/beam-example.yaml",
    "flink-tls-example/pre-install.yaml",
    "flink-tls-example/basic-secure.yaml",
    "flink-tls-example/basic-secure-deployment-only.yaml",
    "flink-tls-example/basic-secure-session-job-only.yaml",
)


@dataclass(frozen=True)
class Expect:
    """What ``plan -f`` and ``lint -f`` exit with on one example, and text their output must hold."""

    plan: int
    lint: int
    says: tuple[str, ...] = ()  # in the plan output (the reason for an exit 2, or a mapping shown)
    runs: str | None = None  # the integration test that runs it on the local runtime


MAPPED = "local:///opt/flink/examples/streaming/StateMachineExample.jar → "
SHAPED = "test_reactive_mode_and_a_custom_log4j_configuration_run_as_is"


def not_flink(kind: str, api_version: str) -> str:
    return f"'{kind}' ({api_version}) is not a Flink resource"


NO_SNAPSHOTS = "kind 'FlinkStateSnapshot' is not supported by flinkops"
NO_JAR = "which does not exist (build or copy the jar there"
LITERAL_SECRET = "holds a literal secret"

EXPECTED: dict[str, Expect] = {
    "basic.yaml": Expect(0, 0, (MAPPED,), runs="test_the_basic_example_runs_unchanged_to_stable"),
    "basic-checkpoint-ha.yaml": Expect(
        0, 0, (MAPPED,), runs="test_checkpointing_with_kubernetes_ha_runs_as_is"
    ),  # lint warns (checkpoint pause, retention) but finds no error
    "basic-ingress.yaml": Expect(0, 0, (MAPPED,)),  # starts what basic.yaml starts: STARTS_AS_BASIC below
    "advanced-ingress.yaml": Expect(0, 0, (MAPPED,)),  # the same
    "basic-reactive.yaml": Expect(0, 0, (MAPPED,), runs=SHAPED),
    "basic-secure.yaml": Expect(
        2,
        2,
        (
            not_flink("Secret", "v1"),
            not_flink("Issuer", "cert-manager.io/v1"),
            not_flink("Certificate", "cert-manager.io/v1"),
        ),
    ),
    "basic-session.yaml": Expect(0, 0, ("flinkdeployment/ref-session: create",)),
    "basic-session-job.yaml": Expect(
        2, 2, ("file:///opt/flink/artifacts/TopSpeedWindowing.jar is ", NO_JAR)
    ),  # the jars are put into the image by its Dockerfile
    "basic-session-deployment-and-job.yaml": Expect(
        0,
        0,
        ("flinksessionjob/ref-session-cluster-job2: create",),
        runs="test_a_session_cluster_and_its_jobs_in_one_file_run_as_is",
    ),  # the jobs need 6 slots: the session cluster starts TaskManagers for them
    "basic-session-deployment-only.yaml": Expect(0, 0, ("flinkdeployment/ref-session-only: create",)),
    "basic-session-job-only.yaml": Expect(
        0, 0, ("waits for session cluster 'ref-session-only', which does not exist yet",)
    ),  # GitOps order: it waits for its cluster
    "canary.yaml": Expect(0, 0),  # a health probe of the control loop: nothing is deployed for it
    "custom-logging.yaml": Expect(0, 0, (MAPPED,), runs=SHAPED),
    "pod-template.yaml": Expect(0, 0, (MAPPED,)),  # the same
    "pod-template-artifact-fetcher.yaml": Expect(
        2, 2, ("local:///fetched-jars/TopSpeedWindowing.jar is /fetched-jars/TopSpeedWindowing.jar", NO_JAR)
    ),  # an init container downloads the jar inside the pod
    "standalone_pvc.yaml": Expect(
        2,
        2,
        (
            "apiVersion: missing required field",  # the reference's file has none: kubectl refuses it too
            "spec.jobManager.volumeClaimTemplates: unknown field",
            "spec.taskManager.volumeClaimTemplates: unknown field",
        ),
    ),
    "autoscaling/autoscaling.yaml": Expect(2, 2, ("local:///opt/flink/usrlib/autoscaling.jar is ", NO_JAR)),
    "autoscaling/autoscaling-dynamic.yaml": Expect(2, 2, ("local:///opt/flink/usrlib/autoscaling.jar is ", NO_JAR)),
    "autoscaling/autoscaling-canary.yaml": Expect(2, 2, ("local:///opt/flink/usrlib/autoscaling.jar is ", NO_JAR)),
    "hpa/basic-hpa.yaml": Expect(
        2, 2, (not_flink("HorizontalPodAutoscaler", "autoscaling/v2"),)
    ),  # the FlinkDeployment alone is fine
    "snapshot/checkpoint.yaml": Expect(2, 2, (NO_SNAPSHOTS,)),
    "snapshot/job-from-savepoint.yaml": Expect(2, 2, (NO_SNAPSHOTS, "spec.job.initialStateReference: unknown field")),
    "snapshot/savepoint-already-exists.yaml": Expect(2, 2, (NO_SNAPSHOTS,)),
    "snapshot/savepoint-job-defaults.yaml": Expect(2, 2, (NO_SNAPSHOTS,)),
    "snapshot/savepoint-job-full-spec.yaml": Expect(2, 2, (NO_SNAPSHOTS,)),
    "flink-python-example/python-example.yaml": Expect(
        2, 2, ("the -pyclientexec interpreter /usr/local/bin/python3: it does not exist",)
    ),  # with an interpreter that has PyFlink it runs: test_the_python_example_layout_runs_to_stable
    "flink-sql-runner-example/sql-example.yaml": Expect(2, 2, ("local:///opt/flink/usrlib/sql-runner.jar is ", NO_JAR)),
    "flink-beam-example/beam-example.yaml": Expect(2, 2, ("local:///opt/flink/usrlib/beam-runner.jar is ", NO_JAR)),
    "flink-tls-example/pre-install.yaml": Expect(
        2, 2, (not_flink("Secret", "v1"), not_flink("Certificate", "cert-manager.io/v1"))
    ),
    "flink-tls-example/basic-secure.yaml": Expect(0, 1, (MAPPED,)),  # lint: the keystore passwords are literal
    "flink-tls-example/basic-secure-deployment-only.yaml": Expect(0, 1, ("flinkdeployment/ref-tls-session: create",)),
    "flink-tls-example/basic-secure-session-job-only.yaml": Expect(
        0, 1, ("waits for session cluster 'ref-tls-session', which does not exist yet",)
    ),
}


@pytest.fixture(scope="module")
def example_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache holding the image's example jars, made from a stand-in for Maven (a jar without
    Main-Class, as Flink publishes them): plan maps and reads them without the network."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLINKOPS_CACHE", str(root))
        version = find_distribution().version

        def fetch(group: str, artifact: str, release: str) -> Path:
            plain = root / f"{artifact}-{release}.jar"
            with zipfile.ZipFile(plain, "w") as jar:
                jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n")
            return plain

        for name in ("streaming/StateMachineExample.jar", "streaming/TopSpeedWindowing.jar"):
            example_jar(name, version, versions=lambda group, artifact: [version], fetch=fetch)
        yield root


@pytest.fixture
def target(tmp_path: Path, example_cache: Path, monkeypatch: pytest.MonkeyPatch) -> TestTarget:
    """The CLI in this process on a local target with the real preflight, whose controller never starts."""
    return cli_on(TestTarget(tmp_path / "home", preflight=True), monkeypatch)


def flinkops(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_corpus_has_one_file_for_every_reference_example() -> None:
    assert sorted(EXPECTED) == sorted(REFERENCE_EXAMPLES)
    files = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.yaml"))
    assert files == sorted(REFERENCE_EXAMPLES)


@pytest.mark.parametrize("example", REFERENCE_EXAMPLES)
def test_each_reference_example_plans_and_lints_to_its_expected_outcome(target: TestTarget, example: str) -> None:
    expect = EXPECTED[example]
    path = CORPUS / example
    code, output = flinkops("plan", "-f", str(path))
    assert code == expect.plan, output
    for text in expect.says:
        assert text in output, f"{example}: {text!r} not in\n{output}"
    if expect.plan == 2:
        assert "nothing was changed" in output
    lint_code, lint_output = flinkops("lint", "-f", str(path))
    assert lint_code == expect.lint, lint_output
    if expect.lint == 1:
        assert LITERAL_SECRET in lint_output
    assert target.documents() == []  # plan and lint never write


def test_every_example_that_runs_names_a_test_that_exists() -> None:
    source = (Path(__file__).parent.parent / "integration" / "test_reference_examples.py").read_text()
    runs = {e.runs for e in EXPECTED.values() if e.runs}
    assert runs and all(f"def {name}(" in source for name in runs if name)
    assert all(e.plan == 0 for e in EXPECTED.values() if e.runs)
    assert all(EXPECTED[e].plan == 0 and EXPECTED[e].runs is None for e in STARTS_AS_BASIC)


def test_a_session_job_alone_is_accepted_once_its_cluster_exists(target: TestTarget) -> None:
    """The job-only example after the deployment-only one, the order the reference's docs apply them in."""
    assert flinkops("apply", "-f", str(CORPUS / "basic-session-deployment-only.yaml"))[0] == 0
    assert [d["metadata"]["name"] for d in target.documents()] == ["ref-session-only"]
    code, output = flinkops("plan", "-f", str(CORPUS / "basic-session-job-only.yaml"))
    assert code == 0, output
    assert "local:///opt/flink/examples/streaming/TopSpeedWindowing.jar → " in output


#: Examples whose difference from ``basic.yaml`` is Kubernetes-only (pod templates, ingresses): the local runtime
#: starts for each what it starts for ``basic.yaml``, shown in-process below instead of by a run of their own.
STARTS_AS_BASIC = ("pod-template.yaml", "basic-ingress.yaml", "advanced-ingress.yaml")


def what_the_local_runtime_starts(
    target: TestTarget, example: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """Apply ``example`` (in this process; no controller runs), build its cluster request as the controller's
    first deploy does, and let the real local runtime deploy it with each process start recorded (a ``sleep``
    stands in for the JVM): the cluster's configuration and log configuration files, its lib/, usrlib/ and
    plugins/ links, and every process's command line, environment and working directory. The resource's own
    name is written NAME, so two examples compare by what they start."""
    code, output = flinkops("apply", "-f", str(CORPUS / example))
    assert code == 0, output
    name = yaml.safe_load((CORPUS / example).read_text())["metadata"]["name"]
    [document] = [d for d in target.documents() if d["metadata"]["name"] == name]
    resource = FlinkDeployment.model_validate(document)
    home = target.home
    dist = find_distribution()
    provisioner = LocalProvisioner(home, dist, sys.executable)
    request = RequestBuilder(FakeStore(), provisioner).cluster_request(
        resource, DeployCluster(spec=resource.spec, generation=1, job_id="0" * 32)
    )

    started: list[dict[str, object]] = []
    real_popen = subprocess.Popen

    def record(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        started.append({"argv": list(argv), "env": dict(options["env"]), "cwd": str(options["cwd"])})
        return real_popen(["sleep", "60"], stdin=subprocess.DEVNULL, start_new_session=True)

    runtime = LocalRuntime(home, dist, launcher=Launcher(dist, cds=ClassDataSharing.disabled()))
    with monkeypatch.context() as patch:
        patch.setattr(local_runtime.subprocess, "Popen", record)
        patch.setattr(local_runtime, "free_ports", lambda count, avoid=None: list(range(41000, 41000 + count)))
        try:
            runtime.deploy(request)
            root = runtime.cluster_dir(request.key)
            links = {
                str(path.relative_to(root)): str(path.readlink())
                for sub in ("lib", "usrlib", "plugins")
                for path in sorted((root / sub).rglob("*"))
                if path.is_symlink()
            }
            seen = {
                "config": yaml.safe_load((root / "conf" / "config.yaml").read_text()),
                "log4j": (root / "conf" / "log4j-console.properties").read_text(),
                "links": links,
                "processes": started,
            }
        finally:
            runtime.delete(request.key)
            runtime.close()
    return json.loads(json.dumps(seen).replace(name, "NAME"))


@pytest.mark.parametrize("example", STARTS_AS_BASIC)
def test_the_local_runtime_starts_for_a_kubernetes_shaped_example_what_it_starts_for_the_basic_one(
    target: TestTarget, example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pod templates (sidecars, init containers, volumes) and ingresses are kept for Kubernetes and mean nothing on
    this machine: the same Flink configuration, files and processes as ``basic.yaml``, so running them adds no
    proof (``basic.yaml`` runs in tests/integration/test_reference_examples.py)."""
    kubernetes_shaped = what_the_local_runtime_starts(target, example, monkeypatch)
    basic = what_the_local_runtime_starts(target, "basic.yaml", monkeypatch)
    processes = kubernetes_shaped["processes"]
    assert isinstance(processes, list)
    mains = [next(arg for arg in p["argv"] if arg.startswith("org.apache.flink.")) for p in processes]
    assert mains == [APPLICATION_MAIN, TASKMANAGER_MAIN], "one JobManager running the job, one TaskManager"
    assert kubernetes_shaped == basic
