"""The Flink configuration file ``runtimes.kubernetes.render`` puts into a cluster's ConfigMap is read by real
Flink (the installed wheel's distribution): Flink's own ``BashJavaUtils``, which the container scripts run before
every JobManager and TaskManager start, loads it from the directory the ConfigMap is mounted at and derives the
JVM memory from the process sizes flinkops rendered, the same sizes the container requests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from flinkops.api.loader import load_documents
from flinkops.api.models import FlinkDeployment, JobSpec
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.flink.distribution import find_distribution
from flinkops.runtimes.kubernetes.render import MAIN_CONTAINER, ApplicationLaunch, render_cluster

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"


JOB = JobSpec.model_validate(
    {"jarURI": "local:///opt/flink/usrlib/job.jar", "entryClass": "a.B", "args": ["--in", "a;b"], "parallelism": 2}
)


def rendered(mode: str) -> list[dict[str, Any]]:
    """The EKS guide's session cluster (Flink 2.0) in standalone mode, as it is or running an application."""
    (resource,) = load_documents((SEEDS / "eks-session-cluster.yaml").read_text(), "eks-session-cluster.yaml")
    assert isinstance(resource, FlinkDeployment)
    resource = resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"uid": "u-1"})})
    spec = resource.spec.model_copy(update={"job": JOB if mode == "application" else None})
    # As on Kubernetes: no default state directory (a pod's disk does not outlive it), the image's Python.
    config = render_flink_config(spec, RenderInputs("basic-session-cluster", "default", None, ""))
    launch = ApplicationLaunch.of(JOB, "0" * 32) if spec.job is not None else None
    return render_cluster(resource, config, generation=1, application=launch, spec=spec, mode="standalone")


def bash_java_utils(conf_dir: Path, command: str) -> str:
    dist = find_distribution()
    classpath = ":".join([*(str(j) for j in dist.lib_jars()), str(dist.bin / "bash-java-utils.jar")])
    result = subprocess.run(
        [
            dist.java,
            "-cp",
            classpath,
            "org.apache.flink.runtime.util.bash.BashJavaUtils",
            command,
            "--configDir",
            str(conf_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("mode", ["session", "application"])
def test_flink_reads_the_rendered_configuration(tmp_path: Path, mode: str) -> None:
    manifests = rendered(mode)
    (config_map,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text)
    assert (tmp_path / "config.yaml").exists()  # Flink 2.0: the new configuration file

    jm = bash_java_utils(tmp_path, "GET_JM_RESOURCE_PARAMS")
    tm = bash_java_utils(tmp_path, "GET_TM_RESOURCE_PARAMS")
    # 2048m processes, as both containers request; slots from the seed's configuration.
    assert "Total Process Memory: 2.000gb (2147483648 bytes)" in " ".join(jm.split())
    assert "taskmanager.numberOfTaskSlots=2" in tm
    if mode == "application":  # the program arguments arrive as one list, ';' inside an argument intact
        assert "Loading configuration property: $internal.application.program-args, [--in, a;b]" in jm
    deployments = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}
    for deployment in deployments.values():
        (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == MAIN_CONTAINER]
        assert container["resources"]["requests"]["memory"] == "2048Mi"
