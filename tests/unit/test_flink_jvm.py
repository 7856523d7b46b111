"""The JVM options Flink needs on Java 17 (``flink/jvm.py``): one list for both runtimes, put where the Flink
version that runs reads it, merged with the user's ``env.java.*`` options. On Kubernetes the ConfigMap replaces
the image's own configuration file, so without this a Flink 2 job fails with ``InaccessibleObjectException``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.api.loader import load_documents
from flinkops.api.models import FlinkDeployment
from flinkops.flink.config import render_flink_config, render_inputs
from flinkops.flink.distribution import find_distribution
from flinkops.flink.jvm import DEFAULT_OPTS_KEY, JAVA_MODULE_OPTIONS, OPTS_KEY, module_options_key
from flinkops.provisioning.local import LocalProvisioner
from flinkops.provisioning.pods import PodProvisioner
from flinkops.runtimes.kubernetes.render import render_cluster
from flinkops.runtimes.local.cds import ClassDataSharing
from flinkops.runtimes.local.launch import Launcher, ProcessSpec

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"
UID = "5b1d7a52-0000-4000-8000-000000000002"
OPENS_UTIL = "--add-opens=java.base/java.util=ALL-UNNAMED"


def deployment(version: str | None, conf: dict[str, str] | None = None) -> FlinkDeployment:
    spec: dict[str, Any] = {"image": "flink:x", "serviceAccount": "flink", "flinkConfiguration": conf or {}}
    if version is not None:
        spec["flinkVersion"] = version
    spec["job"] = {"jarURI": "local:///opt/flink/usrlib/job.jar", "upgradeMode": "stateless"}
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "jvm", "namespace": "ns", "uid": UID, "generation": 1},
        "spec": spec,
    }
    return FlinkDeployment.model_validate(body)


def pod_config(resource: FlinkDeployment) -> dict[str, Any]:
    """The Flink configuration file in the ConfigMap the pods mount, as the operator renders it."""
    config = render_flink_config(resource.spec, PodProvisioner(Path("/nonexistent")).render_inputs(resource))
    manifests = render_cluster(resource, config, generation=1, application=None)
    (config_map,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    data = config_map["data"]
    if "config.yaml" in data:
        loaded: dict[str, Any] = yaml.safe_load(data["config.yaml"])
        return loaded
    return dict(line.split(": ", 1) for line in data["flink-conf.yaml"].splitlines() if line)


@pytest.mark.parametrize(
    ("version", "key"),
    [
        ("v1_16", None),
        ("v1_17", None),
        ("v1_18", OPTS_KEY),
        ("v1_19", DEFAULT_OPTS_KEY),
        ("v1_20", DEFAULT_OPTS_KEY),
        ("v2_0", DEFAULT_OPTS_KEY),
        ("v2_2", DEFAULT_OPTS_KEY),
        ("2.2.1", DEFAULT_OPTS_KEY),
        ("1.18.1", OPTS_KEY),
        (None, DEFAULT_OPTS_KEY),
    ],
)
def test_each_flink_version_reads_the_flags_from_its_own_key(version: str | None, key: str | None) -> None:
    assert module_options_key(version) == key


def test_a_flink_2_pod_gets_the_module_flags_and_keeps_the_users_own_options() -> None:
    user = "-XX:+UseG1GC -Dmy.flag=1"
    config = pod_config(deployment("v2_2", {"env.java.opts.all": user, "env.java.opts.taskmanager": "-Dtm=1"}))

    assert config[DEFAULT_OPTS_KEY].split() == list(JAVA_MODULE_OPTIONS)
    assert OPENS_UTIL in config[DEFAULT_OPTS_KEY]
    # The user's options stay where Flink appends them to the defaults: not replaced, not duplicated.
    assert config["env.java.opts.all"] == user and config["env.java.opts.taskmanager"] == "-Dtm=1"


def test_an_administrators_default_options_are_kept_after_the_module_flags() -> None:
    config = pod_config(deployment("v1_20", {DEFAULT_OPTS_KEY: f"-Dcorp.proxy=on {OPENS_UTIL}"}))

    words = config[DEFAULT_OPTS_KEY].split()
    assert words[-2:] == ["-Dcorp.proxy=on", OPENS_UTIL]
    assert words.count(OPENS_UTIL) == 1 and set(JAVA_MODULE_OPTIONS) <= set(words)


def test_flink_1_18_has_no_default_options_so_the_flags_go_before_the_users_in_opts_all() -> None:
    (resource,) = load_documents((SEEDS / "fraud-scoring.yaml").read_text(), "fraud-scoring.yaml")
    assert isinstance(resource, FlinkDeployment)
    resource = resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"uid": UID})})
    spec = resource.spec.model_copy(
        update={"flink_configuration": {**resource.spec.flink_configuration, "env.java.opts.all": "-Dseed=1"}}
    )
    config = pod_config(resource.model_copy(update={"spec": spec}))

    assert config["env.java.opts.all"].split() == [*JAVA_MODULE_OPTIONS, "-Dseed=1"]
    assert DEFAULT_OPTS_KEY not in config, "Flink 1.18 does not read env.java.default-opts.all"


def test_java_11_era_versions_are_left_alone() -> None:
    config = pod_config(deployment("v1_17", {"env.java.opts.all": "-Dold=1"}))
    assert config["env.java.opts.all"] == "-Dold=1" and DEFAULT_OPTS_KEY not in config


def test_the_list_covers_what_flinks_own_distribution_ships() -> None:
    """One source of truth: every flag the installed distribution's default configuration passes is in it."""
    dist = find_distribution()
    shipped = yaml.safe_load((dist.home / "conf" / "config.yaml").read_text())["env"]["java"]["opts"]["all"]
    assert set(str(shipped).split()) <= set(JAVA_MODULE_OPTIONS)


def test_the_local_runtime_starts_its_jvms_with_the_same_flags(tmp_path: Path) -> None:
    dist = find_distribution()
    provisioner = LocalProvisioner(tmp_path / "home", dist, "python3")
    resource = deployment("v1_18", {"env.java.opts.all": "-Dmine=1"})  # the spec says 1.18; the wheel runs 2.x
    inputs = provisioner.render_inputs(resource)
    assert inputs == render_inputs(resource, tmp_path / "home", "python3", dist.version)
    config = render_flink_config(resource.spec, inputs)
    assert config[DEFAULT_OPTS_KEY].split() == list(JAVA_MODULE_OPTIONS)

    root = tmp_path / "cluster"
    (root / "conf").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config))
    for jar in dist.lib_jars():
        (root / "lib" / jar.name).symlink_to(jar)
    log_dir = root / "log" / "taskmanager-0"
    log_dir.mkdir(parents=True)
    launcher = Launcher(dist, "direct", ClassDataSharing.disabled())
    argv = launcher.command(ProcessSpec("taskmanager", False, "jvm", root, log_dir, (), {})).argv
    flags = [a for a in argv if a.startswith("--add-")]
    assert flags == list(JAVA_MODULE_OPTIONS)
    assert argv.index("-Dmine=1") > argv.index(OPENS_UTIL), "the user's options come after the defaults"
