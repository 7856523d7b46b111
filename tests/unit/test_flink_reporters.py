"""Flink's own metric reporters as the seeds configure them (``metrics.reporter.prom.*`` on port 9999, Datadog's
HTTP reporter ``metrics.reporter.dghttp.*``): the pod ports and scrape annotations on Kubernetes, a port of its own
for every local process, the Prometheus service-discovery file and ``describe``, the Datadog key only ever by
reference, and settings Flink could not read refused with their field path."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flinkops.api.models import FlinkDeployment
from flinkops.api.reporters import DATADOG_FACTORY, LOOPBACK_FACTORY, PROMETHEUS_FACTORY, parse_ports
from flinkops.api.secrets import KUBERNETES_SCHEMES, LOCAL_SCHEMES, parse_reference
from flinkops.api.validation import validate_resource
from flinkops.cli.main import app
from flinkops.core.lint import lint
from flinkops.errors import FlinkopsError, PermanentError, RuntimeFailure
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.loopback import LoopbackBuildError
from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
from flinkops.procs import start_ticks
from flinkops.provisioning import local as local_provisioning
from flinkops.provisioning.local import LocalProvisioner
from flinkops.runtimes.kubernetes.names import ApplicationLaunch
from flinkops.runtimes.kubernetes.render import TASKMANAGER_POD_TEMPLATE_FILE, render_cluster
from flinkops.runtimes.local.launch import Launch, ProcessSpec
from flinkops.runtimes.local.reporters import PortBook, endpoints, sd_path, write_targets
from flinkops.runtimes.local.runtime import LocalRuntime
from flinkops.service import apply, describe
from support.service import TestTarget, deployment

PROM = {"metrics.reporter.prom.factory.class": PROMETHEUS_FACTORY, "metrics.reporter.prom.port": "9999"}
DD_REF = "${secret:k8s:datadog/api-key}"
DATADOG = {
    "metrics.reporter.dghttp.factory.class": DATADOG_FACTORY,
    "metrics.reporter.dghttp.tags": "service:fraud-scoring,env:prod",
}
Obj = dict[str, Any]


def resource(config: dict[str, str], template: Obj | None = None, mode: str = "standalone") -> FlinkDeployment:
    spec: Obj = {
        "image": "flink:2.2",
        "flinkVersion": "v2_2",
        "mode": mode,
        "serviceAccount": "flink",
        "flinkConfiguration": config,
        "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 2, "upgradeMode": "stateless"},
    }
    if template is not None:
        spec["podTemplate"] = template
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "fraud", "namespace": "payments", "uid": "u-1", "generation": 1},
        "spec": spec,
    }
    return FlinkDeployment.model_validate(body)


def manifests(r: FlinkDeployment) -> list[Obj]:
    config = render_flink_config(r.spec, RenderInputs(r.metadata.name, r.metadata.namespace, None, ""))
    assert r.spec.job is not None
    return render_cluster(r, config, generation=1, application=ApplicationLaunch.of(r.spec.job, "0" * 32))


def pod_templates(found: list[Obj]) -> dict[str, Obj]:
    """Every pod template by component: the Deployments' and, in native mode, the TaskManager template file."""
    pods = {m["metadata"]["labels"]["component"]: m["spec"]["template"] for m in found if m["kind"] == "Deployment"}
    for m in found:
        if m["kind"] == "ConfigMap" and TASKMANAGER_POD_TEMPLATE_FILE in m["data"]:
            pods["taskmanager"] = yaml.safe_load(m["data"][TASKMANAGER_POD_TEMPLATE_FILE])
    return pods


def problems(r: FlinkDeployment) -> dict[str, str]:
    return {p.path: p.render() for p in validate_resource(r, default_state_dirs=True, secret_schemes=LOCAL_SCHEMES)}


# ------------------------------------------------------------------------------------------------ Kubernetes


@pytest.mark.parametrize("mode", ["standalone", "native"])
def test_every_pod_declares_port_9999_and_the_prometheus_scrape_annotations(mode: str) -> None:
    pods = pod_templates(manifests(resource(PROM, mode=mode)))
    assert set(pods) == {"jobmanager", "taskmanager"}
    for pod in pods.values():
        annotations = pod["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", "9999")
        assert annotations["prometheus.io/path"] == "/metrics"
        assert not any(k.startswith("ad.datadoghq.com/") for k in annotations), "Datadog's check is asked for"
        (main,) = [c for c in pod["spec"]["containers"] if c["name"] == "flink-main-container"]
        assert {"name": "metrics", "containerPort": 9999, "protocol": "TCP"} in main["ports"]


def test_datadog_agents_get_an_openmetrics_check_on_the_main_container_when_asked() -> None:
    config = {**PROM, "flinkops.metrics.scrape-annotations": "datadog"}
    for pod in pod_templates(manifests(resource(config))).values():
        annotations = pod["metadata"]["annotations"]
        assert "prometheus.io/scrape" not in annotations
        check = json.loads(annotations["ad.datadoghq.com/flink-main-container.checks"])
        (instance,) = check["openmetrics"]["instances"]
        assert instance["openmetrics_endpoint"] == "http://%%host%%:9999/metrics"
        assert instance["metrics"] == [".*"] and instance["namespace"] == "flink"


def test_the_users_own_annotations_win_and_a_users_datadog_check_is_not_doubled() -> None:
    own = {
        "prometheus.io/scrape": "false",
        "ad.datadoghq.com/flink-main-container.check_names": '["openmetrics"]',
        "ad.datadoghq.com/flink-main-container.instances": '[{"openmetrics_endpoint": "http://%%host%%:9999/metrics"}]',
    }
    config = {**PROM, "flinkops.metrics.scrape-annotations": "prometheus,datadog"}
    for pod in pod_templates(manifests(resource(config, {"metadata": {"annotations": own}}))).values():
        annotations = pod["metadata"]["annotations"]
        assert {k: annotations[k] for k in own} == own
        assert annotations["prometheus.io/port"] == "9999"
        assert "ad.datadoghq.com/flink-main-container.checks" not in annotations


@pytest.mark.parametrize(
    "config",
    [
        {**PROM, "flinkops.metrics.scrape-annotations": "none"},
        {**PROM, "metrics.reporters": "jmx"},  # configured but not enabled
        DATADOG,  # a push reporter has nothing to scrape
    ],
)
def test_no_scrape_annotations_without_an_enabled_prometheus_reporter_or_when_off(config: dict[str, str]) -> None:
    for pod in pod_templates(manifests(resource(config))).values():
        assert not any(k.startswith(("prometheus.io/", "ad.datadoghq.com/")) for k in pod["metadata"]["annotations"])


def test_the_datadog_key_reaches_the_pods_through_a_secret_key_ref_and_no_manifest_holds_it() -> None:
    r = resource({**DATADOG, "metrics.reporter.dghttp.apikey": DD_REF})
    assert validate_resource(r, secret_schemes=KUBERNETES_SCHEMES) == []
    found = manifests(r)
    env_name = parse_reference(DD_REF).env_name
    read = {"name": env_name, "valueFrom": {"secretKeyRef": {"name": "datadog", "key": "api-key"}}}
    for pod in pod_templates(found).values():
        (main,) = pod["spec"]["containers"]
        assert read in main["env"]
        assert main["args"][main["args"].index(f"metrics.reporter.dghttp.apikey=$({env_name})") - 1] == "-D"
    (config_map,) = [m for m in found if m["kind"] == "ConfigMap"]
    assert yaml.safe_load(config_map["data"]["config.yaml"])["metrics.reporter.dghttp.apikey"] == DD_REF
    assert not any(m["kind"] == "Secret" for m in found)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("metrics.reporter.prom.port", "ninety", "is not a port"),
        ("metrics.reporter.prom.port", "9260-9250", "low to high"),
        ("metrics.reporter.prom.port", "70000", "1 to 65535"),
        ("flinkops.metrics.scrape-annotations", "newrelic", "unknown agent 'newrelic'"),
    ],
)
def test_a_reporter_setting_flink_or_flinkops_cannot_read_is_refused_at_its_field(
    key: str, value: str, said: str
) -> None:
    found = problems(resource({**PROM, key: value}))
    assert said in found[f'spec.flinkConfiguration["{key}"]']


def test_ports_ranges_and_lists_read_as_flink_reads_them() -> None:
    assert parse_ports("9999") == [(9999, 9999)]
    assert parse_ports(" 9250 - 9260 ,9300") == [(9250, 9260), (9300, 9300)]


def test_a_plain_text_datadog_key_is_a_lint_error_that_never_prints_it_and_a_reference_is_fine() -> None:
    plain = resource({**DATADOG, "metrics.reporter.dghttp.apikey": "0123456789abcdef0123456789abcdef"})
    (finding,) = lint(plain)
    assert (finding.rule_id, finding.severity) == ("FO008", "error")
    assert "0123456789abcdef" not in finding.render()
    referenced = resource({**DATADOG, "metrics.reporter.dghttp.apikey": "${secret:env:DD_API_KEY}"})
    assert lint(referenced) == [] and problems(referenced) == {}


# ------------------------------------------------------------------------------------------------ local ports


def record(home: Path, key: ClusterKey, processes: list[Obj], name: str = "cluster.json") -> None:
    directory = home / "clusters" / key.namespace / key.name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps({"generation": 1, "processes": processes}))


def me(role: str, index: int, ports: dict[str, int], alive: bool = True) -> Obj:
    """A process record naming this test process (alive) or a pid that is not it (dead)."""
    ticks = start_ticks(os.getpid())
    assert ticks is not None
    return {
        "role": role,
        "index": index,
        "pid": os.getpid(),
        "start_ticks": ticks if alive else ticks + 1,
        "log_dir": "/nonexistent",
        "metrics_ports": ports,
    }


def test_each_local_process_gets_its_own_port_from_the_configured_range(tmp_path: Path) -> None:
    key = ClusterKey("payments", "fraud")
    record(tmp_path, key, [me("jobmanager", 0, {"prom": 47301})])
    book = PortBook(tmp_path)
    config = {**PROM, "metrics.reporter.prom.port": "47300-47305"}
    first = book.allocate(config, "payments/fraud taskmanager-0")
    second = book.allocate(config, "payments/fraud taskmanager-1")
    assert first == {"prom": 47300}, "the lowest free port of the range"
    assert second == {"prom": 47302}, "neither the one just handed out nor one a record lists"


def test_a_single_configured_port_becomes_a_free_port_per_process(tmp_path: Path) -> None:
    book = PortBook(tmp_path)
    ports = {book.allocate(PROM, f"jm-{i}")["prom"] for i in range(3)}
    assert len(ports) == 3 and 9999 not in ports


def free_block(count: int) -> int:
    """The first port of ``count`` consecutive ports free on 127.0.0.1 now, below the kernel's ephemeral range
    (32768 and up: the ports other processes' connections take at any moment), so a fixed range cannot be found
    taken by a neighbour."""
    for first in range(20_000, 32_000, count):
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise AssertionError(f"no {count} consecutive free ports below 32000")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_range_with_no_port_left_fails_the_start_saying_what_to_do(tmp_path: Path) -> None:
    book = PortBook(tmp_path)
    first = free_block(2)
    config = {**PROM, "metrics.reporter.prom.port": f"{first}-{first + 1}"}
    book.allocate(config, "a")
    book.allocate(config, "b")
    with pytest.raises(RuntimeFailure, match=r"payments/fraud taskmanager-2: no free port left in .*widen the range"):
        book.allocate(config, "payments/fraud taskmanager-2")


def test_no_prometheus_reporter_no_port(tmp_path: Path) -> None:
    assert PortBook(tmp_path).allocate({**DATADOG, "metrics.reporter.dghttp.apikey": DD_REF}, "x") == {}


# ------------------------------------------------------------------------------------------------ discovery


def test_the_discovery_file_lists_every_live_process_with_its_labels(tmp_path: Path) -> None:
    fraud, lake = ClusterKey("payments", "fraud"), ClusterKey("ads", "lake")
    record(tmp_path, fraud, [me("jobmanager", 0, {"prom": 9301}), me("taskmanager", 0, {"prom": 9302})])
    record(tmp_path, lake, [me("taskmanager", 1, {"prom": 9311}, alive=False), me("jobmanager", 0, {"prom": 9310})])
    record(tmp_path, lake, [me("jobmanager", 0, {"prom": 9320})], name="prepared.json")  # no job until promoted
    record(tmp_path, ClusterKey("ads", "quiet"), [me("jobmanager", 0, {})])  # no reporter configured

    path = write_targets(tmp_path)

    assert path == sd_path(tmp_path) == tmp_path / "prometheus" / "flink.json"
    entries = json.loads(path.read_text())
    assert entries == [
        {
            "targets": ["127.0.0.1:9310"],
            "labels": {"namespace": "ads", "name": "lake", "component": "jobmanager", "process": "jobmanager-0",
                       "reporter": "prom"},
        },
        {
            "targets": ["127.0.0.1:9301"],
            "labels": {"namespace": "payments", "name": "fraud", "component": "jobmanager",
                       "process": "jobmanager-0", "reporter": "prom"},
        },
        {
            "targets": ["127.0.0.1:9302"],
            "labels": {"namespace": "payments", "name": "fraud", "component": "taskmanager",
                       "process": "taskmanager-0", "reporter": "prom"},
        },
    ]  # fmt: skip
    listed = endpoints(tmp_path, lake)
    assert [(e.process, e.url, e.alive) for e in listed] == [
        ("jobmanager-0", "http://127.0.0.1:9310/metrics", True),
        ("taskmanager-1", "http://127.0.0.1:9311/metrics", False),
    ]


def test_with_no_cluster_the_discovery_file_is_an_empty_list(tmp_path: Path) -> None:
    assert json.loads(write_targets(tmp_path).read_text()) == []


# ------------------------------------------------------------------------------------------------ describe


def test_describe_lists_each_processs_endpoint_and_the_discovery_file_never_the_datadog_key(
    cli: CliRunner, target: TestTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "dd-key-must-not-show")
    config = {**PROM, **DATADOG, "metrics.reporter.dghttp.apikey": "${secret:env:DD_API_KEY}"}
    apply(target, [deployment(config=config)])
    key = ClusterKey("default", "fraud")
    record(target.home, key, [me("jobmanager", 0, {"prom": 9401}), me("taskmanager", 0, {"prom": 9402}, alive=False)])

    result = cli.invoke(app, ["describe", "fraud"])

    assert result.exit_code == 0, result.output
    assert f"every process's: {target.home / 'prometheus' / 'flink.json'}" in result.output
    lines = result.output.splitlines()
    assert any("jobmanager-0" in line and "http://127.0.0.1:9401/metrics" in line for line in lines)
    (tm,) = [line for line in lines if "taskmanager-0" in line]
    assert "http://127.0.0.1:9402/metrics" in tm and "not running: unknown" in tm
    assert "dd-key-must-not-show" not in result.output


def test_describe_lists_no_endpoint_before_a_cluster_runs(target: TestTarget) -> None:
    apply(target, [deployment(config=PROM)])
    assert describe(target, "fraud").metrics == ()  # nothing deployed yet: no record, no endpoint


# ------------------------------------------------------------------------------------------------ plugins


def provisioner_with(tmp_path: Path, *bundled: str) -> LocalProvisioner:
    """A local provisioner over a distribution whose ``plugins/`` holds ``bundled`` (one jar each)."""
    flink_home = tmp_path / "flink"
    for plugin in bundled:
        (flink_home / "plugins" / plugin).mkdir(parents=True)
        (flink_home / "plugins" / plugin / f"flink-{plugin}-2.2.1.jar").write_bytes(b"jar")
    (flink_home / "lib").mkdir(parents=True)
    (flink_home / "lib" / "flink-dist-2.2.1.jar").write_bytes(b"jar")
    return LocalProvisioner(tmp_path / "home", FlinkDistribution(flink_home, "2.2.1", "java"), "python3")


class LoopbackBuilds:
    """Stands in for ``flink.loopback.loopback_plugin_jar`` (javac is the live test's), remembering each base jar."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bases: list[Path] = []
        self.classpaths: list[list[str]] = []

    def __call__(self, flink_jar: Path, classpath: list[Path], java: str | None = None) -> Path:
        self.bases.append(flink_jar)
        self.classpaths.append([p.name for p in classpath])
        return self.tmp / "flink-metrics-prometheus-2.2.1-loopback-0123.jar"


def test_locally_flinks_prometheus_factory_is_replaced_by_the_loopback_one_over_flinks_own_jar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioner = provisioner_with(tmp_path, "metrics-prometheus")
    builds = LoopbackBuilds(tmp_path)
    monkeypatch.setattr(local_provisioning, "loopback_plugin_jar", builds)
    config = {**PROM, "metrics.reporter.prom.port": "9250-9260"}

    extras = provisioner.prepare_cluster(resource(config).spec, config)

    assert extras.config["metrics.reporter.prom.factory.class"] == LOOPBACK_FACTORY
    assert "metrics.reporter.prom.port" not in extras.config, "the port setting stays the user's"
    assert builds.bases == [
        tmp_path / "flink" / "plugins" / "metrics-prometheus" / "flink-metrics-prometheus-2.2.1.jar"
    ]
    assert builds.classpaths == [["flink-dist-2.2.1.jar"]]
    assert dict(extras.plugins) == {"metrics-prometheus": tmp_path / "flink-metrics-prometheus-2.2.1-loopback-0123.jar"}
    assert PortBook(tmp_path).allocate({**config, **extras.config}, "jm") == {"prom": 9250}, (
        "the substituted factory is still a Prometheus reporter that gets a port per process"
    )


def test_on_kubernetes_flinks_own_prometheus_factory_stays() -> None:
    (config_map,) = [m for m in manifests(resource(PROM)) if m["kind"] == "ConfigMap"]
    rendered = yaml.safe_load(config_map["data"]["config.yaml"])
    assert rendered["metrics.reporter.prom.factory.class"] == PROMETHEUS_FACTORY


def test_a_loopback_reporter_that_cannot_be_built_fails_the_start_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_compiler(flink_jar: Path, classpath: list[Path], java: str | None = None) -> Path:
        raise LoopbackBuildError("javac not found: install a JDK (17) or set JAVA_HOME")

    monkeypatch.setattr(local_provisioning, "loopback_plugin_jar", no_compiler)
    with pytest.raises(PermanentError, match=r"metrics.reporter.prom.factory.class: .*127.0.0.1.*javac not found"):
        provisioner_with(tmp_path, "metrics-prometheus").prepare_cluster(resource(PROM).spec, PROM)


def test_the_distributions_reporter_plugins_are_used_and_a_missing_one_is_fetched_or_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "dd-key")
    provisioner = provisioner_with(tmp_path, "metrics-prometheus")
    builds = LoopbackBuilds(tmp_path)
    monkeypatch.setattr(local_provisioning, "loopback_plugin_jar", builds)
    spec = resource(PROM).spec
    config = {**PROM, **DATADOG, "metrics.reporter.dghttp.apikey": "${secret:env:DD_API_KEY}"}
    fetched: list[str] = []

    def fetch(name: str, version: str) -> Path:
        fetched.append(f"{name} {version}")
        return tmp_path / f"flink-{name}-{version}.jar"

    monkeypatch.setattr(local_provisioning, "plugin_jar", fetch)
    extras = provisioner.prepare_cluster(spec, config)
    assert fetched == ["metrics-datadog 2.2.1"], "the bundled Prometheus reporter's jar is used as it is"
    assert dict(extras.plugins) == {
        "metrics-datadog": tmp_path / "flink-metrics-datadog-2.2.1.jar",
        "metrics-prometheus": tmp_path / "flink-metrics-prometheus-2.2.1-loopback-0123.jar",
    }
    assert extras.environment == {parse_reference("${secret:env:DD_API_KEY}").env_name: "dd-key"}, (
        "the key travels to the launcher in the process environment, never in the configuration"
    )
    assert "dd-key" not in json.dumps(dict(extras.config))

    fetched.clear()
    bare = provisioner_with(tmp_path / "bare")
    extras = bare.prepare_cluster(spec, PROM)
    assert (
        fetched == ["metrics-prometheus 2.2.1"] and builds.bases[-1] == tmp_path / "flink-metrics-prometheus-2.2.1.jar"
    )
    assert extras.config["metrics.reporter.prom.factory.class"] == LOOPBACK_FACTORY

    def unavailable(name: str, version: str) -> Path:
        raise FlinkopsError("no network")

    monkeypatch.setattr(local_provisioning, "plugin_jar", unavailable)
    with pytest.raises(
        PermanentError, match=r"metrics.reporter.dghttp.factory.class: .* has no plugins/metrics-datadog"
    ):
        provisioner.prepare_cluster(spec, config)


class SleepLauncher:
    """Starts ``sleep`` in place of a JVM and remembers each process's arguments."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.args: list[tuple[str, ...]] = []

    def command(self, spec: ProcessSpec) -> Launch:
        self.args.append(spec.args)
        return Launch(["sleep", "60"], dict(os.environ), "direct", self.tmp / f"{len(self.args)}.out")

    def started(self, launch: Launch, pid: int, ticks: int) -> None:
        pass

    def records_classes(self, pid: int, ticks: int) -> bool:
        return False


def test_the_runtime_starts_each_process_with_its_port_and_keeps_the_discovery_file_current(tmp_path: Path) -> None:
    home, key = tmp_path / "home", ClusterKey("payments", "fraud")
    root = home / "clusters" / key.namespace / key.name
    (root / "conf").mkdir(parents=True)
    first = free_block(10)
    range_ = f"{first}-{first + 9}"
    (root / "conf" / "config.yaml").write_text(yaml.safe_dump({**PROM, "metrics.reporter.prom.port": range_}))
    launcher = SleepLauncher(tmp_path)
    runtime = LocalRuntime(home, FlinkDistribution(tmp_path, "2.2.1", "java"), launcher=launcher)  # type: ignore[arg-type]
    job = ApplicationJob("com.example.Job", ("--rate", "20"), "0" * 32)
    request = ClusterRequest(key=key, generation=1, flink_config={}, application=job)
    procs = [runtime.start(root, request, "jobmanager", 0), runtime.start(root, request, "taskmanager", 0)]
    try:
        assert [p.metrics_ports for p in procs] == [{"prom": first}, {"prom": first + 1}]
        jm_args, tm_args = launcher.args
        # Before the job's class and arguments: the entry point reads no option after them.
        assert jm_args[:2] == ("-D", f"metrics.reporter.prom.port={first}")
        assert jm_args[-2:] == ("--rate", "20")
        assert tm_args[:2] == ("-D", f"metrics.reporter.prom.port={first + 1}")
        runtime._write_record(key, {"generation": 1, "processes": [dataclasses.asdict(p) for p in procs]})
        listed = json.loads(sd_path(home).read_text())
        assert [e["targets"] for e in listed] == [[f"127.0.0.1:{first}"], [f"127.0.0.1:{first + 1}"]]

        runtime.changed_clusters()  # starts watching the recorded processes
        runtime.stop(procs[1:])  # the TaskManager dies: off the list at the next look
        assert runtime.changed_clusters() == [key]
        assert [e["labels"]["process"] for e in json.loads(sd_path(home).read_text())] == ["jobmanager-0"]
    finally:
        runtime.stop(procs)
        runtime.close()
