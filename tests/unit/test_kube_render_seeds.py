"""What the seeds ask of the Kubernetes pods, rendered: Karpenter pools (node selectors, tolerations, affinity),
Secrets by reference (``kubernetes.secrets``, ``kubernetes.env.secretKeyRef``, env ``valueFrom.secretKeyRef``),
the Ingress of ``spec.ingress``, the Prometheus reporter's port with the Datadog annotations that scrape it, and
the Java 17 flags, in standalone and native mode. The inputs are the seed fixtures and the reconstructions under
``tests/fixtures/seeds/rendering`` (each names the seed it comes from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.api.loader import load_documents
from flinkops.api.models import FlinkDeployment
from flinkops.api.validation import validate_resource
from flinkops.flink.config import render_flink_config
from flinkops.provisioning.pods import PodProvisioner
from flinkops.runtimes.kubernetes.ingress import ingress_url
from flinkops.runtimes.kubernetes.render import (
    MAIN_CONTAINER,
    TASKMANAGER_POD_TEMPLATE_FILE,
    ApplicationLaunch,
    render_cluster,
)

RENDERING = Path(__file__).parent.parent / "fixtures" / "seeds" / "rendering"
FIXTURES = sorted(p.name for p in RENDERING.glob("*.yaml"))
UID = "5b1d7a52-0000-4000-8000-000000000003"
JOB_ID = "0123456789abcdef0123456789abcdef"
Obj = dict[str, Any]


def seed(name: str, **spec: Any) -> FlinkDeployment:
    (resource,) = load_documents((RENDERING / name).read_text(), name)
    assert isinstance(resource, FlinkDeployment)
    meta = resource.metadata.model_copy(update={"uid": UID, "generation": 1})
    return resource.model_copy(update={"metadata": meta, "spec": resource.spec.model_copy(update=spec)})


def render(resource: FlinkDeployment, mode: str) -> dict[tuple[str, str], Obj]:
    """The manifests the operator renders (its Flink configuration, without a state default), by kind and name."""
    config = render_flink_config(resource.spec, PodProvisioner(Path("/nonexistent")).render_inputs(resource))
    job = resource.spec.job
    launch = ApplicationLaunch.of(job, JOB_ID) if job is not None else None
    manifests = render_cluster(resource, config, generation=1, application=launch, mode=mode)
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def pods(manifests: dict[tuple[str, str], Obj]) -> list[Obj]:
    """Every pod template: the Deployments' and, in native mode, the TaskManager template file Flink reads."""
    found = [m["spec"]["template"] for (kind, _), m in manifests.items() if kind == "Deployment"]
    for (kind, _), m in manifests.items():
        if kind == "ConfigMap" and TASKMANAGER_POD_TEMPLATE_FILE in m["data"]:
            found.append(yaml.safe_load(m["data"][TASKMANAGER_POD_TEMPLATE_FILE]))
    return found


def main(pod: Obj) -> Obj:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == MAIN_CONTAINER]
    return container


def deployment(manifests: dict[tuple[str, str], Obj], name: str) -> Obj:
    return manifests[("Deployment", name)]["spec"]["template"]


def flink_conf(manifests: dict[tuple[str, str], Obj]) -> dict[str, Any]:
    (data,) = [m["data"] for (kind, _), m in manifests.items() if kind == "ConfigMap"]
    if "config.yaml" in data:
        loaded: dict[str, Any] = yaml.safe_load(data["config.yaml"])
        return loaded
    return dict(line.split(": ", 1) for line in data["flink-conf.yaml"].splitlines() if line)


@pytest.mark.parametrize("name", FIXTURES)
def test_every_reconstruction_validates(name: str) -> None:
    (resource,) = load_documents((RENDERING / name).read_text(), name)
    assert validate_resource(resource) == []


# ------------------------------------------------------------------ seed 004: Karpenter pools, Datadog, port 9999


@pytest.mark.parametrize("mode", ["standalone", "native"])
def test_karpenter_pool_and_datadog_scrape_reach_every_pod(mode: str) -> None:
    resource = seed("karpenter-datadog.yaml")
    manifests = render(resource, mode)
    annotations = resource.spec.pod_template["metadata"]["annotations"]  # type: ignore[index]
    every = pods(manifests)
    assert len(every) == 2, "a JobManager and a TaskManager pod template"
    for pod in every:
        # The Datadog autodiscovery annotations, verbatim: they name the main container flinkops renders.
        assert {k: pod["metadata"]["annotations"][k] for k in annotations} == annotations
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"karpenter.sh/nodepool": "orders"}
        assert {"key": "karpenter.sh/nodepool", "operator": "Equal", "value": "orders", "effect": "NoSchedule"} in (
            spec["tolerations"]
        )
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["on-demand"]
        ports = {p["name"]: p["containerPort"] for p in main(pod)["ports"]}
        assert ports["metrics"] == 9999, "the port the OpenMetrics endpoint %%host%%:9999 scrapes"
    config = flink_conf(manifests)
    assert config["metrics.reporter.prom.port"] == "9999"
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in config["env.java.opts.all"], "Flink 1.18 on Java 17"


def test_a_prometheus_reporter_not_enabled_by_metrics_reporters_declares_no_port() -> None:
    resource = seed("karpenter-datadog.yaml")
    conf = {**resource.spec.flink_configuration, "metrics.reporters": "jmx"}
    manifests = render(
        resource.model_copy(update={"spec": resource.spec.model_copy(update={"flink_configuration": conf})}),
        "standalone",
    )
    for pod in pods(manifests):
        assert "metrics" not in {p["name"] for p in main(pod)["ports"]}


def test_the_default_prometheus_port_and_a_port_range() -> None:
    resource = seed("karpenter-datadog.yaml")
    conf = dict(resource.spec.flink_configuration)
    del conf["metrics.reporter.prom.port"]
    conf["metrics.reporter.second.factory.class"] = conf["metrics.reporter.prom.factory.class"]
    conf["metrics.reporter.second.port"] = "9260-9270"
    spec = resource.spec.model_copy(update={"flink_configuration": conf})
    manifests = render(resource.model_copy(update={"spec": spec}), "standalone")
    ports = {p["name"]: p["containerPort"] for p in main(deployment(manifests, "orders"))["ports"]}
    assert (ports["metrics"], ports["metrics-2"]) == (9249, 9260)


# ------------------------------------------------------------------ seed 002: node group and S3 plugin


@pytest.mark.parametrize("mode", ["standalone", "native"])
def test_eks_sample_job_pins_its_pods_to_the_streaming_node_group(mode: str) -> None:
    manifests = render(seed("eks-sample-job.yaml"), mode)
    for pod in pods(manifests):
        assert pod["spec"]["nodeSelector"] == {"NodeGroupType": "StreamingOptimized"}
        env = {e["name"]: e.get("value") for e in main(pod)["env"]}
        assert env["ENABLE_BUILT_IN_PLUGINS"] == "flink-s3-fs-presto-2.0.0.jar"
    config = flink_conf(manifests)
    assert config["high-availability.type"] == "kubernetes"
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in config["env.java.default-opts.all"]


# ------------------------------------------------------------------ seed 003: EKS compute tolerations


def test_datalake_tolerations_from_flink_keys_on_the_pods_flinkops_creates() -> None:
    manifests = render(seed("datalake-session-cluster.yaml"), "standalone")
    workload = {"key": "workload", "operator": "Equal", "value": "datalake", "effect": "NoSchedule"}
    spot = {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 120}
    jobmanager = deployment(manifests, "oc-inventory-session-deployment-fdeploy")
    taskmanager = deployment(manifests, "oc-inventory-session-deployment-fdeploy-taskmanager")
    assert jobmanager["spec"]["tolerations"] == [workload]
    assert taskmanager["spec"]["tolerations"] == [workload, spot]


def test_in_native_mode_flink_applies_the_taskmanager_tolerations_itself() -> None:
    """Flink decorates the TaskManager pods it creates from the same keys: the template file must not repeat
    them, but the configuration the JobManager reads must carry them."""
    manifests = render(seed("datalake-session-cluster.yaml"), "native")
    jm_pod, tm_template = pods(manifests)
    assert jm_pod["spec"]["tolerations"] == [
        {"key": "workload", "operator": "Equal", "value": "datalake", "effect": "NoSchedule"}
    ]
    assert "tolerations" not in tm_template["spec"]
    assert flink_conf(manifests)["kubernetes.taskmanager.tolerations"].startswith("key:workload")


def test_tolerations_from_the_template_and_from_flink_keys_add_up() -> None:
    resource = seed("karpenter-datadog.yaml")
    conf = {**resource.spec.flink_configuration, "kubernetes.jobmanager.tolerations": "key:jm-only,operator:Exists"}
    spec = resource.spec.model_copy(update={"flink_configuration": conf})
    manifests = render(resource.model_copy(update={"spec": spec}), "standalone")
    keys = [t["key"] for t in deployment(manifests, "orders")["spec"]["tolerations"]]
    assert keys == ["karpenter.sh/nodepool", "jm-only"]
    assert [t["key"] for t in deployment(manifests, "orders-taskmanager")["spec"]["tolerations"]] == [
        "karpenter.sh/nodepool"
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kubernetes.jobmanager.tolerations", "key:a,color:blue"),
        ("kubernetes.jobmanager.tolerations", "key:a,operator:Exists,tolerationSeconds:soon"),
        ("kubernetes.secrets", "tls:relative/path"),
        ("kubernetes.env.secretKeyRef", "env:ONLY_A_NAME"),
        ("metrics.reporter.prom.port", "ninety"),
    ],
)
def test_a_pod_setting_flink_would_refuse_fails_the_render_naming_the_key(key: str, value: str) -> None:
    resource = seed("karpenter-datadog.yaml")
    spec = resource.spec.model_copy(update={"flink_configuration": {**resource.spec.flink_configuration, key: value}})
    with pytest.raises(ValueError, match=key):
        render(resource.model_copy(update={"spec": spec}), "standalone")


# ------------------------------------------------------------------ seed 000: Secrets by reference only


@pytest.mark.parametrize("mode", ["standalone", "native"])
def test_secrets_are_mounted_and_read_into_the_environment_by_reference(mode: str) -> None:
    manifests = render(seed("batch-secure.yaml"), mode)
    jobmanager = deployment(manifests, "conversions-batch")
    containers = {c["name"]: c for c in jobmanager["spec"]["containers"]}
    flink = containers[MAIN_CONTAINER]
    assert {"name": "flink-internal-tls-volume", "secret": {"secretName": "flink-internal-tls"}} in (
        jobmanager["spec"]["volumes"]
    )
    assert {"name": "flink-internal-tls-volume", "mountPath": "/opt/flink/tls", "readOnly": True} in (
        flink["volumeMounts"]
    )
    env = {e["name"]: e for e in flink["env"]}
    assert env["KEYSTORE_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "flink-tls-passwords", "key": "keystore"}}
    assert env["TRUSTSTORE_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "truststore"
    # The sidecar in front of the UI keeps its own secret reference, and gets the restricted defaults.
    proxy = containers["okta-proxy"]
    assert {e["name"]: e["valueFrom"] for e in proxy["env"]} == {
        "OAUTH2_PROXY_CLIENT_SECRET": {"secretKeyRef": {"name": "okta-client", "key": "client-secret"}}
    }
    assert proxy["securityContext"]["allowPrivilegeEscalation"] is False
    if mode == "standalone":
        taskmanager = main(deployment(manifests, "conversions-batch-taskmanager"))
        assert "KEYSTORE_PASSWORD" in {e["name"] for e in taskmanager["env"]}
    else:  # Flink mounts them into the TaskManager pods it creates, from the same configuration
        (tm_template,) = pods(manifests)[1:]
        assert "volumes" not in tm_template["spec"] or all(
            v["name"] != "flink-internal-tls-volume" for v in tm_template["spec"]["volumes"]
        )
        assert flink_conf(manifests)["kubernetes.secrets"] == "flink-internal-tls:/opt/flink/tls"


def test_no_secret_value_is_ever_in_what_flinkops_writes() -> None:
    """Only names of Secrets and keys appear; the operator has nothing else to write (it never reads Secrets)."""
    text = yaml.safe_dump(list(render(seed("batch-secure.yaml"), "standalone").values()))
    for fragment in ("flink-tls-passwords", "okta-client", "flink-internal-tls"):
        assert fragment in text
    assert "stringData" not in text and "kind: Secret" not in text


# ------------------------------------------------------------------ seed 001: the Flink UI behind SSO


def test_fraud_scoring_ingress_routes_the_ui_to_the_rest_service() -> None:
    manifests = render(seed("fraud-scoring-ingress.yaml"), "standalone")
    ingress = manifests[("Ingress", "fraud-scoring")]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    meta = ingress["metadata"]
    assert meta["namespace"] == "payments" and meta["ownerReferences"][0]["uid"] == UID
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "flinkops" and meta["labels"]["app"] == "fraud-scoring"
    assert meta["annotations"]["nginx.ingress.kubernetes.io/auth-url"].endswith("/oauth2/auth")
    assert meta["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    (rule,) = spec["rules"]
    assert rule["host"] == "flink.payments.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/payments/fraud-scoring(/|$)(.*)"
    assert path["pathType"] == "ImplementationSpecific"
    assert path["backend"] == {"service": {"name": "fraud-scoring-rest", "port": {"number": 8081}}}
    assert spec["tls"] == [{"hosts": ["flink.payments.example.com"], "secretName": "fraud-scoring-ui-tls"}]
    assert list(manifests)[-1] == ("Ingress", "fraud-scoring"), "created after the cluster, as the reference does"


@pytest.mark.parametrize(
    ("template", "host", "path"),
    [
        ("{{name}}.{{namespace}}.flink.example.com", "app.ns.flink.example.com", None),
        ("https://{{NAME}}.example.com/ui", "app.example.com", "/ui"),
        ("/{{namespace}}/{{name}}", None, "/ns/app"),
        ("example.com/{{name}}(/|$)(.*)?x=1", "example.com", "/app(/|$)(.*)?x=1"),
    ],
)
def test_ingress_templates(template: str, host: str | None, path: str | None) -> None:
    assert ingress_url(template, "app", "ns") == (host, path)


def test_no_ingress_without_spec_ingress_and_a_bad_template_is_refused_at_validation() -> None:
    resource = seed("fraud-scoring-ingress.yaml", ingress=None)
    assert not [key for key in render(resource, "standalone") if key[0] == "Ingress"]
    bad = seed("fraud-scoring-ingress.yaml")
    assert bad.spec.ingress is not None
    broken = bad.spec.model_copy(update={"ingress": bad.spec.ingress.model_copy(update={"template": "{{job}}.x"})})
    problems = validate_resource(bad.model_copy(update={"spec": broken}))
    assert [p.path for p in problems] == ["spec.ingress.template"]
