"""Secret references in a spec (``${secret:...}``): what is accepted where, what the local launcher and the Kubernetes
rendering make of them, and that a resolved value appears in no message, file or manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flinkops.api.models import FlinkDeployment
from flinkops.api.secrets import KUBERNETES_SCHEMES, LOCAL_SCHEMES, parse_reference
from flinkops.api.validation import validate_resource
from flinkops.cli.main import app
from flinkops.core.lint import lint
from flinkops.errors import RuntimeFailure
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.flink.distribution import FlinkDistribution, find_distribution
from flinkops.ports import ApplicationJob
from flinkops.runtimes.kubernetes.names import ApplicationLaunch
from flinkops.runtimes.kubernetes.render import render_cluster
from flinkops.runtimes.local.cds import ClassDataSharing
from flinkops.runtimes.local.launch import Launcher, ProcessSpec, jobmanager_args
from flinkops.secrets import SecretResolver, SecretUnavailable
from support.service import TestTarget

VAULT = "${secret:vault:secret/payments/kafka#password}"
VALUE = "hunter2-do-not-log"


def resource(config: dict[str, str] | None = None, args: list[str] | None = None, **spec: Any) -> FlinkDeployment:
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "pay", "namespace": "team-a", "uid": "u-1", "generation": 2},
        "spec": {
            "image": "flink:2.2",
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "flinkConfiguration": config or {},
            "job": {
                "jarURI": "local:///opt/flink/usrlib/job.jar",
                "args": args or [],
                "parallelism": 1,
                "upgradeMode": "stateless",
            },
            **spec,
        },
    }
    return FlinkDeployment.model_validate(body)


def problems(r: FlinkDeployment, schemes: frozenset[str] = LOCAL_SCHEMES) -> dict[str, str]:
    return {p.path: p.render() for p in validate_resource(r, default_state_dirs=True, secret_schemes=schemes)}


# ------------------------------------------------------------------------------------------------ syntax


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("${secret:env:KAFKA_PASSWORD}", {"scheme": "env", "name": "KAFKA_PASSWORD"}),
        ("${secret:file:/run/secrets/kafka}", {"scheme": "file", "path": "/run/secrets/kafka"}),
        (VAULT, {"scheme": "vault", "mount": "secret", "path": "payments/kafka", "key": "password"}),
        ("${secret:k8s:kafka-creds/password}", {"scheme": "k8s", "name": "kafka-creds", "key": "password"}),
    ],
)
def test_each_scheme_names_where_its_secret_lives(text: str, fields: dict[str, str]) -> None:
    ref = parse_reference(text)
    assert {k: getattr(ref, k) for k in fields} == fields
    assert ref.text == text and ref.env_name.startswith("FLINKOPS_SECRET_")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("${secret:aws:prod/kafka}", "unknown secret scheme 'aws'"),
        ("${secret:env:1BAD}", "not an environment variable name"),
        ("${secret:file:relative/path}", "absolute path"),
        ("${secret:vault:secret/payments/kafka}", "<mount>/<path>#<key>"),
        ("${secret:vault:secret#password}", "<mount>/<path>#<key>"),
        ("${secret:k8s:Kafka_Creds/password}", "<secret-name>/<key>"),
    ],
)
def test_a_malformed_reference_is_invalid_input_at_its_field(text: str, said: str) -> None:
    found = problems(resource({"security.ssl.keystore-password": text}))
    message = found["spec.flinkConfiguration.security.ssl.keystore-password"]
    assert "malformed secret reference" in message and said in message


def test_a_malformed_reference_makes_apply_exit_2_with_the_field_path(cli: CliRunner, target: TestTarget) -> None:
    path = target.home / "bad.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(resource({"s3.secret-key": "${secret:aws:prod/s3}"}).model_dump_json(by_alias=True))
    path.write_text(yaml.safe_dump(doc))
    result = cli.invoke(app, ["apply", "-f", str(path)])
    assert result.exit_code == 2, result.output
    assert "spec.flinkConfiguration.s3.secret-key" in result.output and "unknown secret scheme 'aws'" in result.output
    assert "Traceback" not in result.output and target.documents() == []


# ------------------------------------------------------------------------------------------------ where Flink masks


def test_a_reference_in_a_key_flink_masks_is_accepted() -> None:
    keys = ["security.ssl.keystore-password", "s3.secret-key", "metrics.reporter.dd.apikey", "my.token"]
    assert problems(resource(dict.fromkeys(keys, VAULT))) == {}


def test_a_reference_in_a_key_flink_logs_is_refused() -> None:
    found = problems(resource({"kafka.user": "${secret:env:KAFKA_USER}"}))
    assert "Flink logs the value of 'kafka.user'" in found["spec.flinkConfiguration.kafka.user"]


def test_a_job_argument_takes_a_reference_only_where_flink_masks_the_whole_argument() -> None:
    ok = resource(args=["--topic", "payments", f"--kafka-password={VAULT}"])
    assert problems(ok) == {}
    found = problems(resource(args=["--kafka-password", VAULT, f"--user={VAULT}", f"{VAULT}x"]))
    assert set(found) == {"spec.job.args[1]", "spec.job.args[2]", "spec.job.args[3]"}
    assert "would leak" in found["spec.job.args[1]"] and "--kafka-password=${secret:" in found["spec.job.args[1]"]
    assert "must end the argument" in found["spec.job.args[3]"]


def test_a_config_reference_is_refused_with_high_availability_where_flink_persists_it() -> None:
    ha = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}
    found = problems(resource({**ha, "s3.secret-key": VAULT}, args=[f"--kafka-password={VAULT}"]))
    assert set(found) == {"spec.flinkConfiguration.s3.secret-key"}, "a job argument is not persisted: accepted"
    assert "submittedExecutionPlan" in found["spec.flinkConfiguration.s3.secret-key"]


def test_each_target_refuses_the_schemes_it_does_not_resolve() -> None:
    local = problems(resource({"s3.secret-key": "${secret:k8s:s3/secret}"}))
    assert "'k8s:' secrets are not resolved on the local target" in local["spec.flinkConfiguration.s3.secret-key"]
    kube = problems(resource({"s3.secret-key": VAULT}, mode="standalone"), KUBERNETES_SCHEMES)
    assert "Vault Agent injector" in kube["spec.flinkConfiguration.s3.secret-key"]


def test_native_mode_on_kubernetes_refuses_references() -> None:
    native = problems(resource({"s3.secret-key": "${secret:k8s:s3/secret}"}), KUBERNETES_SCHEMES)
    assert "mode: standalone" in native["spec.mode"]


def test_a_reference_is_not_a_literal_secret_for_lint_but_a_literal_still_is() -> None:
    assert [f.rule_id for f in lint(resource({"s3.secret-key": VAULT}))] == []
    (finding,) = [f for f in lint(resource({"s3.secret-key": VALUE})) if f.rule_id == "FO008"]
    assert finding.severity == "error" and VALUE not in finding.render() and "${secret:vault:" in finding.fix


# ------------------------------------------------------------------------------------------------ resolution


def test_env_and_file_references_resolve_and_failures_name_the_reference_only(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(VALUE + "\n")
    resolver = SecretResolver({"KAFKA_PASSWORD": VALUE})
    assert resolver.resolve(parse_reference("${secret:env:KAFKA_PASSWORD}")) == VALUE
    assert resolver.resolve(parse_reference(f"${{secret:file:{secret_file}}}")) == VALUE
    with pytest.raises(SecretUnavailable, match=r"has no MISSING; export it"):
        resolver.resolve(parse_reference("${secret:env:MISSING}"))
    with pytest.raises(SecretUnavailable, match="no such file") as exc:
        resolver.resolve(parse_reference(f"${{secret:file:{tmp_path / 'nope'}}}"))
    assert VALUE not in str(exc.value)
    with pytest.raises(SecretUnavailable, match="set VAULT_ADDR"):
        SecretResolver({}).resolve(parse_reference(VAULT))


# ------------------------------------------------------------------------------------------------ local launch


@pytest.fixture(scope="module")
def dist() -> FlinkDistribution:
    return find_distribution()


def _cluster(root: Path, dist: FlinkDistribution, config: dict[str, str]) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config))
    for jar in dist.lib_jars():
        (root / "lib" / jar.name).symlink_to(jar)
    return root


@pytest.mark.parametrize("mode", ["direct", "scripts"])
def test_the_launcher_passes_values_as_masked_arguments_and_keeps_them_out_of_files(
    tmp_path: Path, dist: FlinkDistribution, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "the-controllers-token")
    config = {"jobmanager.memory.process.size": "1024m", "s3.secret-key": VAULT}
    root = _cluster(tmp_path, dist, config)
    ref = parse_reference(VAULT)
    app_job = ApplicationJob("com.example.Job", ("--topic", "t", f"--kafka-password={VAULT}"), "0" * 32)
    args = jobmanager_args(8081, 6123, app_job)
    log_dir = root / "log"
    log_dir.mkdir()
    environment = {ref.env_name: VALUE, "AWS_REGION": "eu-west-1"}
    spec = ProcessSpec("jobmanager", True, "pay", root, log_dir, args, environment)
    launch = Launcher(dist, mode, ClassDataSharing.disabled()).command(spec)
    assert f"-Ds3.secret-key={VALUE}" in launch.argv
    assert f"--kafka-password={VALUE}" in launch.argv
    assert launch.argv.index(f"-Ds3.secret-key={VALUE}") < launch.argv.index("--topic")
    assert ref.env_name not in launch.env and launch.env["AWS_REGION"] == "eu-west-1"
    assert "VAULT_TOKEN" not in launch.env, "the controller's Vault token is not handed to Flink"
    assert VALUE not in (root / "conf" / "config.yaml").read_text()


def test_a_reference_without_its_value_stops_the_start(tmp_path: Path, dist: FlinkDistribution) -> None:
    root = _cluster(tmp_path, dist, {"jobmanager.memory.process.size": "1024m", "s3.secret-key": VAULT})
    (root / "log").mkdir()
    spec = ProcessSpec("taskmanager", True, "pay", root, root / "log", (), {})
    with pytest.raises(RuntimeFailure, match=r"secret \$\{secret:vault:secret/payments/kafka#password\} was not"):
        Launcher(dist, "direct", ClassDataSharing.disabled()).command(spec)


# ------------------------------------------------------------------------------------------------ Kubernetes


def test_kubernetes_pods_read_the_secret_through_secret_key_ref_and_no_manifest_holds_a_value() -> None:
    ref = "${secret:k8s:kafka-creds/password}"
    r = resource({"security.ssl.keystore-password": ref}, args=[f"--kafka-password={ref}"], mode="standalone")
    meta = r.metadata
    config = render_flink_config(r.spec, RenderInputs(meta.name, meta.namespace, "s3://state/pay", "python3"))
    assert r.spec.job is not None
    manifests = render_cluster(r, config, application=ApplicationLaunch.of(r.spec.job, "0" * 32), generation=2)
    env_name = parse_reference(ref).env_name
    read = {"name": env_name, "valueFrom": {"secretKeyRef": {"name": "kafka-creds", "key": "password"}}}
    deployments = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}
    for name in ("pay", "pay-taskmanager"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert read in container["env"]
        args = container["args"]
        assert args[args.index(f"security.ssl.keystore-password=$({env_name})") - 1] == "-D"
    (jm,) = deployments["pay"]["spec"]["template"]["spec"]["containers"]
    assert jm["args"][-1] == f"--kafka-password=$({env_name})"
    (config_map,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    flink_conf = yaml.safe_load(config_map["data"]["config.yaml"])
    assert flink_conf["security.ssl.keystore-password"] == ref, "the ConfigMap carries the reference, not a value"
    assert not any(m["kind"] == "Secret" for m in manifests), "the operator writes no Secret"
