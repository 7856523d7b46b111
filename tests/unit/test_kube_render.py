"""The Kubernetes objects of one Flink cluster (``runtimes.kubernetes.render``): what the seeds render to, how pod
templates merge, how resources map to Flink settings and container requests, HA, native vs standalone, and the
labels, owner references, generation stamps and security defaults every object must carry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.api.loader import load_documents
from flinkops.api.models import FlinkDeployment
from flinkops.flink.config import RenderInputs, render_flink_config
from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
from flinkops.runtimes.kubernetes.render import (
    CLUSTER_LABEL,
    GENERATION_ANNOTATION,
    JOB_ID_ANNOTATION,
    MAIN_CONTAINER,
    MANAGED_BY_LABEL,
    REFERENCE_GENERATION_ANNOTATION,
    TASKMANAGER_POD_TEMPLATE_FILE,
    ApplicationLaunch,
    child_names,
    config_file_name,
    flink_memory_mib,
    generation_of,
    kubernetes_flink_config,
    merge_pod_templates,
    render_cluster,
    render_request,
    selector_labels,
)

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"
UID = "5b1d7a52-0000-4000-8000-000000000001"
JOB_ID = "0123456789abcdef0123456789abcdef"
DEPLOYMENT_SEEDS = ["eks-session-cluster.yaml", "fraud-scoring.yaml", "fraud-scoring-rollback.yaml"]
Obj = dict[str, Any]


# ------------------------------------------------------------------------------------------ helpers


def seed(name: str) -> FlinkDeployment:
    (resource,) = load_documents((SEEDS / name).read_text(), name)
    assert isinstance(resource, FlinkDeployment)
    meta = resource.metadata.model_copy(update={"uid": UID, "generation": 4})
    return resource.model_copy(update={"metadata": meta})


def deployment(spec: dict[str, Any], name: str = "demo", namespace: str = "team-a") -> FlinkDeployment:
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": 2},
        "spec": {"image": "flink:2.2", "flinkVersion": "v2_2", "serviceAccount": "flink", **spec},
    }
    return FlinkDeployment.model_validate(body)


def config_of(resource: FlinkDeployment) -> dict[str, str]:
    meta = resource.metadata
    return render_flink_config(
        resource.spec, RenderInputs(meta.name, meta.namespace, f"s3://state/{meta.namespace}/{meta.name}", "python3")
    )


def launch(resource: FlinkDeployment, restore: str | None = None) -> ApplicationLaunch | None:
    job = resource.spec.job
    return ApplicationLaunch.of(job, JOB_ID, restore) if job is not None else None


def render(resource: FlinkDeployment, mode: str | None = None, **kwargs: Any) -> list[Obj]:
    kwargs.setdefault("application", launch(resource))
    kwargs.setdefault("generation", resource.metadata.generation or 1)
    return render_cluster(resource, config_of(resource), mode=mode, **kwargs)


def by_kind_name(manifests: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def jm(manifests: list[Obj], name: str) -> Obj:
    return by_kind_name(manifests)[("Deployment", name)]


def tm(manifests: list[Obj], name: str) -> Obj:
    return by_kind_name(manifests)[("Deployment", f"{name}-taskmanager")]


def main_container(deploy: Obj) -> Obj:
    (container,) = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == MAIN_CONTAINER]
    return container


def config_map(manifests: list[Obj], name: str) -> Obj:
    return by_kind_name(manifests)[("ConfigMap", f"flink-config-{name}")]


def flink_conf(manifests: list[Obj], name: str) -> dict[str, Any]:
    data = config_map(manifests, name)["data"]
    if "config.yaml" in data:
        loaded = yaml.safe_load(data["config.yaml"])
        assert isinstance(loaded, dict)
        return loaded
    pairs = (line.split(": ", 1) for line in data["flink-conf.yaml"].splitlines() if line)
    return dict(pairs)


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# ------------------------------------------------------------------------------------------ the seeds


def test_eks_session_cluster_renders_a_native_session_cluster() -> None:
    resource = seed("eks-session-cluster.yaml")
    manifests = render(resource)
    name = "basic-session-cluster"
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("ConfigMap", f"flink-config-{name}"),
        ("Service", name),
        ("Service", f"{name}-rest"),
        ("Deployment", name),
    ]
    conf = flink_conf(manifests, name)
    assert conf["execution.target"] == "kubernetes-session"
    assert conf["kubernetes.cluster-id"] == name
    assert conf["kubernetes.namespace"] == "default"
    assert conf["kubernetes.container.image.ref"] == "docker.io/library/flink:2.0.0-java17"
    assert conf["kubernetes.service-account"] == "flink"
    assert conf["taskmanager.numberOfTaskSlots"] == "2"
    assert conf["jobmanager.memory.process.size"] == "2048m"
    assert conf["kubernetes.jobmanager.cpu"] == "1.0"
    assert conf["kubernetes.taskmanager.cpu"] == "1.0"
    assert conf["kubernetes.pod-template-file.taskmanager"] == f"/opt/flink/conf/{TASKMANAGER_POD_TEMPLATE_FILE}"
    assert conf["$internal.deployment.config-dir"] == "/opt/flink/conf"
    assert "$internal.pipeline.job-id" not in conf
    container = main_container(jm(manifests, name))
    assert container["image"] == "docker.io/library/flink:2.0.0-java17"
    assert container["command"] == ["/docker-entrypoint.sh"]
    assert container["args"] == ["kubernetes-jobmanager.sh", "kubernetes-session"]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2048Mi"},
        "limits": {"cpu": "1", "memory": "2048Mi"},
    }


def test_eks_session_cluster_in_standalone_mode_gets_a_taskmanager_deployment() -> None:
    resource = seed("eks-session-cluster.yaml")
    manifests = render(resource, mode="standalone")
    name = "basic-session-cluster"
    assert ("Deployment", f"{name}-taskmanager") in by_kind_name(manifests)
    assert TASKMANAGER_POD_TEMPLATE_FILE not in config_map(manifests, name)["data"]
    assert flink_conf(manifests, name)["execution.target"] == "remote"
    assert main_container(jm(manifests, name))["args"] == ["jobmanager"]
    taskmanagers = tm(manifests, name)
    assert taskmanagers["spec"]["replicas"] == 1  # a session cluster without replicas: one TaskManager
    container = main_container(taskmanagers)
    assert container["args"] == ["taskmanager"]
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2048Mi"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"taskmanager-rpc": 6122}


def test_payments_seed_renders_an_ha_application_cluster() -> None:
    resource = seed("fraud-scoring.yaml")
    manifests = render(resource)
    name = "fraud-scoring"
    # Flink 1.18 reads only flink-conf.yaml, as flat "key: value" lines.
    assert config_file_name(resource.spec.flink_version) == "flink-conf.yaml"
    conf = flink_conf(manifests, name)
    assert conf["execution.target"] == "kubernetes-application"
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == "s3://kv-flink-state-payments-prod/ha/"  # the user's own
    assert conf["high-availability.cluster-id"] == name
    assert conf["$internal.pipeline.job-id"] == JOB_ID
    assert conf["pipeline.jars"] == "local:///opt/flink/usrlib/fraud-scoring.jar"
    assert conf["parallelism.default"] == "6"
    assert conf["taskmanager.memory.process.size"] == "4096m"
    assert conf["kubernetes.taskmanager.cpu"] == "2.0"
    # As in the reference, spec.jobManager.replicas (default 1) decides, not the flinkConfiguration key.
    assert conf["kubernetes.jobmanager.replicas"] == "1"
    jobmanager = jm(manifests, name)
    assert jobmanager["spec"]["replicas"] == 1
    assert jobmanager["metadata"]["annotations"][JOB_ID_ANNOTATION] == JOB_ID
    pod = jobmanager["spec"]["template"]
    assert pod["metadata"]["annotations"]["vault.hashicorp.com/role"] == "flink-payments"
    container = main_container(jobmanager)
    assert container["image"] == "<REGISTRY>/payments/fraud-scoring:1.4.0"
    assert container["args"] == ["kubernetes-jobmanager.sh", "kubernetes-application"]
    assert env_of(container)["_POD_IP_ADDRESS"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
    assert env_of(container)["POD_IP"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
    # Native mode: the TaskManager template (vault annotations, security defaults) is a file for Flink.
    template = yaml.safe_load(config_map(manifests, name)["data"][TASKMANAGER_POD_TEMPLATE_FILE])
    assert template["kind"] == "Pod"
    assert template["metadata"]["annotations"]["vault.hashicorp.com/agent-inject"] == "true"
    assert template["metadata"]["labels"][MANAGED_BY_LABEL] == "flinkops"
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_payments_seed_in_standalone_mode_runs_the_job_from_the_command_line() -> None:
    resource = seed("fraud-scoring.yaml")
    manifests = render(resource, mode="standalone")
    name = "fraud-scoring"
    conf = flink_conf(manifests, name)
    assert conf["execution.target"] == "remote"
    assert conf["pipeline.classpaths"] == "file:///opt/flink/usrlib/fraud-scoring.jar"
    assert main_container(jm(manifests, name))["args"] == [
        "standalone-job",
        "--job-id",
        JOB_ID,
        "-Djobmanager.rpc.address=$(_POD_IP_ADDRESS)",
    ]
    assert tm(manifests, name)["spec"]["replicas"] == 6  # parallelism 6 over one slot each
    assert main_container(tm(manifests, name))["resources"]["requests"] == {"cpu": "2", "memory": "4096Mi"}


def test_rollback_seed_restores_from_its_savepoint() -> None:
    resource = seed("fraud-scoring-rollback.yaml")
    assert resource.spec.job is not None
    restore = resource.spec.job.initial_savepoint_path
    assert restore
    manifests = render(resource, mode="standalone", application=launch(resource, restore))
    conf = flink_conf(manifests, "fraud-scoring")
    assert conf["execution.state-recovery.path"] == restore
    assert conf["execution.savepoint.path"] == restore  # the Flink 1.x spelling this v1_18 cluster reads
    args = main_container(jm(manifests, "fraud-scoring"))["args"]
    assert args[args.index("--fromSavepoint") + 1] == restore


@pytest.mark.parametrize("mode", ["native", "standalone"])
@pytest.mark.parametrize("name", DEPLOYMENT_SEEDS)
def test_every_object_is_owned_labelled_and_stamped(name: str, mode: str) -> None:
    resource = seed(name)
    manifests = render(resource, mode=mode, generation=7)
    expected_type = "flink-native-kubernetes" if mode == "native" else "flink-standalone-kubernetes"
    for manifest in manifests:
        meta = manifest["metadata"]
        assert meta["namespace"] == resource.metadata.namespace
        assert meta["labels"][CLUSTER_LABEL] == resource.metadata.name
        assert meta["labels"]["type"] == expected_type
        assert meta["labels"][MANAGED_BY_LABEL] == "flinkops"
        assert meta["annotations"][GENERATION_ANNOTATION] == "7"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "flink.apache.org/v1beta1",
                "kind": "FlinkDeployment",
                "name": resource.metadata.name,
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        if manifest["kind"] == "Deployment":
            component = meta["labels"]["component"]
            pod_meta = manifest["spec"]["template"]["metadata"]
            selector = manifest["spec"]["selector"]["matchLabels"]
            assert selector == selector_labels(resource.metadata.name, mode, component)
            assert pod_meta["labels"].items() >= selector.items()
            assert pod_meta["labels"][MANAGED_BY_LABEL] == "flinkops"
            assert pod_meta["annotations"][GENERATION_ANNOTATION] == "7"
            assert manifest["spec"]["strategy"] == {"type": "Recreate"}
    assert generation_of(jm(manifests, resource.metadata.name)) == 7
    names = child_names(resource.metadata.name, mode)
    assert [(r.kind, r.name) for r in names.refs()] == [(m["kind"], m["metadata"]["name"]) for m in manifests]


def test_selectors_do_not_change_between_generations() -> None:
    resource = seed("fraud-scoring.yaml")
    first = render(resource, mode="standalone", generation=1)
    second = render(resource, mode="standalone", generation=2)
    for before, after in zip(first, second, strict=True):
        if before["kind"] == "Deployment":
            assert before["spec"]["selector"] == after["spec"]["selector"]
        if before["kind"] == "Service":
            assert before["spec"]["selector"] == after["spec"]["selector"]


def test_services_expose_rpc_blob_and_rest() -> None:
    resource = seed("eks-session-cluster.yaml")
    objects = by_kind_name(render(resource))
    internal = objects[("Service", "basic-session-cluster")]["spec"]
    assert internal["clusterIP"] == "None"
    assert {p["name"]: p["port"] for p in internal["ports"]} == {"jobmanager-rpc": 6123, "blobserver": 6124}
    assert internal["selector"] == selector_labels("basic-session-cluster", "native", "jobmanager")
    rest = objects[("Service", "basic-session-cluster-rest")]["spec"]
    assert rest["type"] == "ClusterIP"
    assert rest["ports"] == [{"name": "rest", "port": 8081, "targetPort": 8081, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("exposed", "service_type", "cluster_ip"),
    [
        ("NodePort", "NodePort", None),
        ("LoadBalancer", "LoadBalancer", None),
        ("Headless_ClusterIP", "ClusterIP", "None"),
    ],
)
def test_rest_service_type_follows_flink_option(exposed: str, service_type: str, cluster_ip: str | None) -> None:
    resource = deployment(
        {
            "flinkConfiguration": {
                "kubernetes.rest-service.exposed.type": exposed,
                "kubernetes.rest-service.annotations": "a.b/c:d",
            }
        }
    )
    rest = by_kind_name(render(resource))[("Service", "demo-rest")]
    assert rest["spec"]["type"] == service_type
    assert rest["spec"].get("clusterIP") == cluster_ip
    assert rest["metadata"]["annotations"]["a.b/c"] == "d"


# ------------------------------------------------------------------------------------------ pod templates


def test_merge_deep_merges_maps_and_the_override_wins() -> None:
    base = {"metadata": {"labels": {"a": "1", "b": "1"}}, "spec": {"nodeSelector": {"disk": "ssd"}}}
    override = {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"hostNetwork": False}}
    merged = merge_pod_templates(base, override)
    assert merged == {
        "metadata": {"labels": {"a": "1", "b": "2", "c": "3"}},
        "spec": {"nodeSelector": {"disk": "ssd"}, "hostNetwork": False},
    }
    assert base["metadata"]["labels"] == {"a": "1", "b": "1"}  # inputs are never modified


def test_merge_merges_containers_env_and_volumes_by_name() -> None:
    base = {
        "spec": {
            "containers": [
                {
                    "name": MAIN_CONTAINER,
                    "env": [{"name": "A", "value": "1"}, {"name": "KEEP", "value": "k"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
    }
    override = {
        "spec": {
            "containers": [
                {"name": "sidecar", "image": "busybox"},
                {"name": MAIN_CONTAINER, "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "3"}]},
            ],
            "volumes": [{"name": "extra", "emptyDir": {}}],
        }
    }
    merged = merge_pod_templates(base, override)
    containers = {c["name"]: c for c in merged["spec"]["containers"]}
    assert list(containers) == [MAIN_CONTAINER, "sidecar"]  # base order first, new names appended
    assert containers[MAIN_CONTAINER]["env"] == [
        {"name": "A", "value": "3"},
        {"name": "KEEP", "value": "k"},
        {"name": "B", "value": "2"},
    ]
    assert containers[MAIN_CONTAINER]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert [v["name"] for v in merged["spec"]["volumes"]] == ["data", "extra"]


def test_merge_replaces_lists_without_names() -> None:
    base = {
        "spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "x", "args": ["one", "two"]}],
        }
    }
    override = {
        "spec": {"tolerations": [{"key": "b", "operator": "Exists"}], "containers": [{"name": "x", "args": ["three"]}]}
    }
    merged = merge_pod_templates(base, override)
    assert merged["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert merged["spec"]["containers"] == [{"name": "x", "args": ["three"]}]


def test_merge_ignores_nulls_in_the_override() -> None:
    merged = merge_pod_templates({"spec": {"nodeSelector": {"a": "b"}}}, {"spec": {"nodeSelector": None}})
    assert merged == {"spec": {"nodeSelector": {"a": "b"}}}
    assert merge_pod_templates(None, None) == {}
    assert merge_pod_templates(None, {"spec": {}}) == {"spec": {}}


def test_merge_by_position_when_the_reference_option_is_false() -> None:
    """The reference operator's default: item i over item i, so differently ordered containers mix."""
    base = {"spec": {"containers": [{"name": MAIN_CONTAINER, "image": "flink"}]}}
    override = {"spec": {"containers": [{"name": "sidecar"}, {"name": "third"}]}}
    merged = merge_pod_templates(base, override, by_name=False)
    assert merged["spec"]["containers"] == [{"name": "sidecar", "image": "flink"}, {"name": "third"}]


def test_component_templates_are_merged_over_the_shared_template() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "podTemplate": {
                "metadata": {"labels": {"team": "payments"}},
                "spec": {
                    "containers": [
                        {
                            "name": MAIN_CONTAINER,
                            "env": [{"name": "SHARED", "value": "1"}],
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                        }
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                },
            },
            "jobManager": {
                "podTemplate": {
                    "spec": {"containers": [{"name": MAIN_CONTAINER, "env": [{"name": "ROLE", "value": "jm"}]}]}
                }
            },
            "taskManager": {
                "podTemplate": {
                    "spec": {
                        "containers": [{"name": "log-shipper", "image": "fluent-bit"}],
                        "tolerations": [{"key": "spot", "operator": "Exists"}],
                    }
                }
            },
        }
    )
    manifests = render(resource)
    jobmanager, taskmanager = jm(manifests, "demo"), tm(manifests, "demo")
    jm_env = env_of(main_container(jobmanager))
    assert jm_env["SHARED"] == "1" and jm_env["ROLE"] == "jm"
    assert "ROLE" not in env_of(main_container(taskmanager))
    assert [c["name"] for c in taskmanager["spec"]["template"]["spec"]["containers"]] == [MAIN_CONTAINER, "log-shipper"]
    assert "tolerations" not in jobmanager["spec"]["template"]["spec"]
    for deploy in (jobmanager, taskmanager):
        pod = deploy["spec"]["template"]
        assert pod["metadata"]["labels"]["team"] == "payments"
        assert [v["name"] for v in pod["spec"]["volumes"]] == ["scratch", "flink-config-volume"]
        mounts = {m["name"]: m["mountPath"] for m in main_container(deploy)["volumeMounts"]}
        assert mounts == {"scratch": "/scratch", "flink-config-volume": "/opt/flink/conf"}


def test_flinkops_owned_fields_win_over_the_template() -> None:
    resource = deployment(
        {
            "podTemplate": {
                "metadata": {"labels": {"app": "something-else", "component": "x"}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccount": "legacy",
                    "containers": [
                        {
                            "name": MAIN_CONTAINER,
                            "image": "ignored:1",
                            "command": ["sleep"],
                            "ports": [
                                {"name": "rest", "containerPort": 9999},
                                {"name": "metrics", "containerPort": 9249},
                            ],
                            "volumeMounts": [{"name": "mine", "mountPath": "/opt/flink/conf"}],
                        }
                    ],
                },
            }
        }
    )
    deploy = jm(render(resource), "demo")
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"][CLUSTER_LABEL] == "demo"
    assert pod["metadata"]["labels"]["component"] == "jobmanager"
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["serviceAccountName"] == "flink"
    assert "serviceAccount" not in pod["spec"]
    container = main_container(deploy)
    assert container["image"] == "flink:2.2"  # spec.image wins, as in the reference
    assert container["command"] == ["/docker-entrypoint.sh"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 9249,
        "rest": 8081,
        "jobmanager-rpc": 6123,
        "blobserver": 6124,
    }
    # In native mode the TaskManager pod template is also where Flink's resource manager reads it.
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/opt/flink/conf", "/opt/flink/pod-template"]


def test_template_image_is_used_when_the_spec_has_none() -> None:
    resource = deployment({"podTemplate": {"spec": {"containers": [{"name": MAIN_CONTAINER, "image": "mine:3"}]}}})
    resource = resource.model_copy(update={"spec": resource.spec.model_copy(update={"image": None})})
    manifests = render(resource)
    assert main_container(jm(manifests, "demo"))["image"] == "mine:3"
    assert flink_conf(manifests, "demo")["kubernetes.container.image.ref"] == "mine:3"
    bare = resource.model_copy(update={"spec": resource.spec.model_copy(update={"pod_template": None})})
    assert main_container(jm(render(bare), "demo"))["image"] == "flink:2.2"  # from flinkVersion v2_2


# ------------------------------------------------------------------------------------------ resources


def test_resource_maps_to_flink_settings_and_container_requests() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "jobManager": {"resource": {"cpu": 0.5, "memory": "1g", "ephemeralStorage": "2Gi"}},
            "taskManager": {"resource": {"cpu": 1.5, "memory": "3000m"}},
        }
    )
    manifests = render(resource)
    conf = flink_conf(manifests, "demo")
    assert conf["kubernetes.jobmanager.cpu"] == "0.5"
    assert conf["jobmanager.memory.process.size"] == "1g"
    assert conf["kubernetes.taskmanager.cpu"] == "1.5"
    assert main_container(jm(manifests, "demo"))["resources"] == {
        "requests": {"cpu": "500m", "memory": "1024Mi", "ephemeral-storage": "2Gi"},
        "limits": {"cpu": "500m", "memory": "1024Mi", "ephemeral-storage": "2Gi"},
    }
    assert main_container(tm(manifests, "demo"))["resources"] == {
        "requests": {"cpu": "1500m", "memory": "3000Mi"},
        "limits": {"cpu": "1500m", "memory": "3000Mi"},
    }


def test_user_flink_settings_win_over_the_resource_fields() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "flinkConfiguration": {
                "kubernetes.jobmanager.cpu": "2",
                "jobmanager.memory.process.size": "1500m",
                "kubernetes.taskmanager.cpu.limit-factor": "2",
                "kubernetes.taskmanager.memory.limit-factor": "1.5",
                "taskmanager.numberOfTaskSlots": "4",
            },
            "jobManager": {"resource": {"cpu": 1, "memory": "4g"}},
            "taskManager": {"resource": {"memory": "2g"}},
        }
    )
    manifests = render(resource)
    conf = flink_conf(manifests, "demo")
    assert conf["kubernetes.jobmanager.cpu"] == "2"
    assert conf["jobmanager.memory.process.size"] == "1500m"
    assert main_container(jm(manifests, "demo"))["resources"]["requests"] == {"cpu": "2", "memory": "1500Mi"}
    # No TaskManager cpu anywhere: Flink's default is one core per slot; the limit factors multiply.
    assert main_container(tm(manifests, "demo"))["resources"] == {
        "requests": {"cpu": "4", "memory": "2048Mi"},
        "limits": {"cpu": "8", "memory": "3072Mi"},
    }


def test_kubernetes_resources_form_maps_ratios_to_limit_factors() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "taskManager": {
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
                }
            },
        }
    )
    manifests = render(resource)
    conf = flink_conf(manifests, "demo")
    assert conf["kubernetes.taskmanager.cpu"] == "0.5"
    assert conf["kubernetes.taskmanager.cpu.limit-factor"] == "2"
    assert conf["kubernetes.taskmanager.memory.limit-factor"] == "2"
    assert conf["taskmanager.memory.process.size"] == "1024m"
    assert main_container(tm(manifests, "demo"))["resources"] == {
        "requests": {"cpu": "500m", "memory": "1024Mi", "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "1", "memory": "2048Mi", "nvidia.com/gpu": "1"},
    }


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("2048m", 2048),
        ("2g", 2048),
        ("2 g", 2048),
        ("1gb", 1024),
        ("2Gi", 2048),
        ("1536Mi", 1536),
        ("1073741824", 1024),
    ],
)
def test_flink_memory_sizes_in_mib(text: str, mib: int) -> None:
    assert flink_memory_mib(text) == mib


def test_flink_memory_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        flink_memory_mib("lots")


# ------------------------------------------------------------------------------------------ high availability


def ha_deployment(replicas: int, mode: str, **conf: str) -> FlinkDeployment:
    return deployment(
        {
            "mode": mode,
            "flinkConfiguration": {"high-availability.type": "kubernetes", **conf},
            "jobManager": {"replicas": replicas},
            "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 2, "upgradeMode": "last-state"},
        }
    )


@pytest.mark.parametrize("mode", ["native", "standalone"])
def test_two_jobmanagers_with_kubernetes_ha(mode: str) -> None:
    resource = ha_deployment(2, mode)
    manifests = render(resource)
    conf = flink_conf(manifests, "demo")
    assert jm(manifests, "demo")["spec"]["replicas"] == 2
    assert conf["kubernetes.jobmanager.replicas"] == "2"
    assert conf["high-availability.cluster-id"] == "demo"
    # No storage directory given: HA metadata goes next to the checkpoints.
    assert conf["high-availability.storageDir"] == "s3://state/team-a/demo/ha"
    container = main_container(jm(manifests, "demo"))
    assert "_POD_IP_ADDRESS" in env_of(container)
    if mode == "standalone":  # an application cluster: standalone-job parses "-Dkey=value" itself
        assert "-Djobmanager.rpc.address=$(_POD_IP_ADDRESS)" in container["args"]


def test_legacy_ha_class_name_counts_as_kubernetes_ha() -> None:
    resource = ha_deployment(
        1,
        "native",
        **{"high-availability.type": "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"},
    )
    assert flink_conf(render(resource), "demo")["high-availability.cluster-id"] == "demo"


def test_kubernetes_ha_without_any_storage_is_refused() -> None:
    resource = ha_deployment(1, "native")
    config = {k: v for k, v in config_of(resource).items() if "checkpointing.dir" not in k}
    with pytest.raises(ValueError, match=r"high-availability\.storageDir"):
        render_cluster(resource, config, generation=1, application=launch(resource))


def test_several_jobmanagers_without_ha_are_refused() -> None:
    resource = deployment({"jobManager": {"replicas": 2}})
    with pytest.raises(ValueError, match="need high availability"):
        render(resource)


def test_zookeeper_ha_allows_standby_jobmanagers() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "flinkConfiguration": {
                "high-availability.type": "zookeeper",
                "high-availability.zookeeper.quorum": "zk:2181",
            },
            "jobManager": {"replicas": 2},
        }
    )
    manifests = render(resource)
    assert jm(manifests, "demo")["spec"]["replicas"] == 2
    # jobmanager.sh reads dynamic properties only as a separate "-D" word.
    assert main_container(jm(manifests, "demo"))["args"] == [
        "jobmanager",
        "-D",
        "jobmanager.rpc.address=$(_POD_IP_ADDRESS)",
    ]


def test_without_ha_the_jobmanager_is_reached_through_the_headless_service() -> None:
    resource = deployment({"mode": "standalone"})
    manifests = render(resource)
    assert flink_conf(manifests, "demo")["jobmanager.rpc.address"] == "demo.team-a"
    assert main_container(jm(manifests, "demo"))["args"] == ["jobmanager"]


# ------------------------------------------------------------------------------------------ native vs standalone


def test_native_application_configures_flinks_own_launcher() -> None:
    resource = deployment(
        {
            "job": {
                "jarURI": "local:///opt/flink/usrlib/job.jar",
                "entryClass": "com.example.Main",
                "args": ["--input", "s3://in/a;b", "--expr", "$(HOME)"],
                "parallelism": 4,
            },
            "taskManager": {"replicas": 3},
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
        }
    )
    manifests = render(resource)
    data = config_map(manifests, "demo")["data"]
    conf = yaml.safe_load(data["config.yaml"])
    assert conf["$internal.application.main"] == "com.example.Main"
    assert conf["$internal.application.program-args"] == ["--input", "s3://in/a;b", "--expr", "$(HOME)"]
    assert conf["pipeline.jars"] == ["local:///opt/flink/usrlib/job.jar"]
    assert conf["parallelism.default"] == "6"  # replicas x slots, as in the reference
    assert TASKMANAGER_POD_TEMPLATE_FILE in data
    assert len([m for m in manifests if m["kind"] == "Deployment"]) == 1


def test_standalone_application_arguments_survive_kubernetes_expansion() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "job": {
                "jarURI": "local:///opt/flink/usrlib/job.jar",
                "entryClass": "com.example.Main",
                "args": ["--expr", "$(HOME)"],
                "allowNonRestoredState": True,
            },
        }
    )
    manifests = render(resource)
    assert main_container(jm(manifests, "demo"))["args"] == [
        "standalone-job",
        "--job-classname",
        "com.example.Main",
        "--job-id",
        JOB_ID,
        "--allowNonRestoredState",
        "--expr",
        "$$(HOME)",
    ]
    conf = flink_conf(manifests, "demo")
    assert conf["execution.state-recovery.ignore-unclaimed-state"] == "true"


def test_a_restore_path_already_in_the_configuration_is_kept() -> None:
    resource = deployment({"mode": "standalone", "job": {"jarURI": "local:///opt/flink/usrlib/job.jar"}})
    config = {**config_of(resource), "execution.state-recovery.path": "s3://sp/savepoint-1"}
    manifests = render_cluster(resource, config, generation=3, application=launch(resource))
    assert flink_conf(manifests, "demo")["execution.state-recovery.path"] == "s3://sp/savepoint-1"
    assert "--fromSavepoint" in main_container(jm(manifests, "demo"))["args"]


def test_legacy_config_file_quotes_list_items_with_separators() -> None:
    resource = deployment(
        {"flinkVersion": "v1_18", "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "args": ["a;b", "c"]}}
    )
    text = config_map(render(resource), "demo")["data"]["flink-conf.yaml"]
    assert '$internal.application.program-args: "a;b";c' in text.splitlines()
    assert config_file_name(None) == "config.yaml"


def test_log_configuration_from_the_spec_or_a_console_default() -> None:
    plain = config_map(render(deployment({})), "demo")["data"]
    assert "ConsoleAppender" in plain["log4j-console.properties"]
    custom = deployment(
        {"logConfiguration": {"log4j-console.properties": "rootLogger.level = DEBUG\n", "logback-console.xml": "<x/>"}}
    )
    data = config_map(render(custom), "demo")["data"]
    assert data["log4j-console.properties"] == "rootLogger.level = DEBUG\n"
    assert data["logback-console.xml"] == "<x/>"


def test_the_secret_environment_is_referenced_by_name() -> None:
    resource = deployment({"mode": "standalone"})
    manifests = render(resource, env_secret="demo-flink-env")
    for deploy in (jm(manifests, "demo"), tm(manifests, "demo")):
        assert main_container(deploy)["envFrom"] == [{"secretRef": {"name": "demo-flink-env"}}]
    native = render(deployment({}), env_secret="demo-flink-env")
    template = yaml.safe_load(config_map(native, "demo")["data"][TASKMANAGER_POD_TEMPLATE_FILE])
    (container,) = template["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "demo-flink-env"}}]


def test_containerized_env_options_become_container_env() -> None:
    resource = deployment(
        {
            "mode": "standalone",
            "flinkConfiguration": {
                "containerized.master.env.ENABLE_BUILT_IN_PLUGINS": "flink-s3-fs-presto-2.2.0.jar",
                "containerized.taskmanager.env.TZ": "UTC",
            },
        }
    )
    manifests = render(resource)
    assert env_of(main_container(jm(manifests, "demo")))["ENABLE_BUILT_IN_PLUGINS"] == "flink-s3-fs-presto-2.2.0.jar"
    assert env_of(main_container(tm(manifests, "demo")))["TZ"] == "UTC"


# ------------------------------------------------------------------------------------------ security and identity


def test_restricted_pod_security_defaults() -> None:
    resource = deployment({"mode": "standalone", "podTemplate": {"spec": {"containers": [{"name": "sidecar"}]}}})
    for deploy in (jm(render(resource), "demo"), tm(render(resource), "demo")):
        pod_spec = deploy["spec"]["template"]["spec"]
        assert pod_spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 9999,
            "runAsGroup": 9999,
            "fsGroup": 9999,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for container in pod_spec["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            }


def test_the_users_security_settings_win() -> None:
    resource = deployment(
        {
            "podTemplate": {
                "spec": {
                    "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
                    "containers": [
                        {
                            "name": MAIN_CONTAINER,
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"]},
                            },
                        },
                        {"name": "root-helper", "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": True}},
                    ],
                }
            }
        }
    )
    pod_spec = jm(render(resource), "demo")["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsUser"] == 1000
    assert pod_spec["securityContext"]["fsGroup"] == 2000
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    containers = {c["name"]: c["securityContext"] for c in pod_spec["containers"]}
    assert containers[MAIN_CONTAINER] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "readOnlyRootFilesystem": True,
    }
    # An explicit root container is not made unstartable by the pod-level non-root default.
    assert containers["root-helper"]["runAsUser"] == 0
    assert containers["root-helper"]["runAsNonRoot"] is False
    assert containers["root-helper"]["allowPrivilegeEscalation"] is True


def test_root_pod_drops_the_non_root_default() -> None:
    resource = deployment({"podTemplate": {"spec": {"securityContext": {"runAsUser": 0}}}})
    context = jm(render(resource), "demo")["spec"]["template"]["spec"]["securityContext"]
    assert context["runAsUser"] == 0
    assert "runAsNonRoot" not in context


def test_service_accounts() -> None:
    unset = deployment({"mode": "standalone"})
    unset = unset.model_copy(update={"spec": unset.spec.model_copy(update={"service_account": None})})
    manifests = render(unset)
    assert jm(manifests, "demo")["spec"]["template"]["spec"]["serviceAccountName"] == "flink"
    assert flink_conf(manifests, "demo")["kubernetes.service-account"] == "flink"
    own = deployment(
        {
            "mode": "standalone",
            "serviceAccount": "payments-sa",
            "flinkConfiguration": {"kubernetes.taskmanager.service-account": "tm-sa"},
        }
    )
    manifests = render(own)
    assert jm(manifests, "demo")["spec"]["template"]["spec"]["serviceAccountName"] == "payments-sa"
    assert tm(manifests, "demo")["spec"]["template"]["spec"]["serviceAccountName"] == "tm-sa"


def test_a_deployment_without_uid_cannot_own_children() -> None:
    resource = deployment({})
    resource = resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"uid": None})})
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        render(resource)


# ------------------------------------------------------------------------------------------ names, stamps, adapters


def test_generation_is_read_back_from_a_jobmanager_deployment() -> None:
    manifests = render(deployment({}), generation=12)
    assert generation_of(jm(manifests, "demo")) == 12
    assert generation_of(None) is None
    assert generation_of({"metadata": {}}) is None
    assert generation_of({"metadata": {"annotations": {GENERATION_ANNOTATION: "x"}}}) is None
    # The reference operator's stamp is a different annotation: flinkops never reads it as its own.
    assert generation_of({"metadata": {"annotations": {REFERENCE_GENERATION_ANNOTATION: "3"}}}) is None


def test_child_names() -> None:
    native = child_names("demo", "native")
    assert (native.config_map, native.jobmanager, native.taskmanager, native.service, native.rest_service) == (
        "flink-config-demo",
        "demo",
        None,
        "demo",
        "demo-rest",
    )
    standalone = child_names("demo", "standalone")
    assert standalone.taskmanager == "demo-taskmanager"
    assert [(r.api_version, r.plural) for r in standalone.refs()] == [
        ("v1", "configmaps"),
        ("v1", "services"),
        ("v1", "services"),
        ("apps/v1", "deployments"),
        ("apps/v1", "deployments"),
    ]


def test_render_request_adapts_the_runtime_port() -> None:
    resource = deployment({"mode": "standalone", "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "args": ["x"]}})
    config = {**config_of(resource), "execution.state-recovery.path": "s3://sp/1"}
    request = ClusterRequest(
        key=ClusterKey("team-a", "demo"),
        generation=5,
        flink_config=config,
        taskmanager_replicas=3,
        application=ApplicationJob(entry_class="com.example.Main", args=("x",), job_id=JOB_ID),
        environment={"AWS_SECRET_ACCESS_KEY": "never-rendered"},
        resource=resource,
    )
    manifests = render_request(request, env_secret="demo-env")
    assert generation_of(jm(manifests, "demo")) == 5
    assert tm(manifests, "demo")["spec"]["replicas"] == 3
    assert main_container(jm(manifests, "demo"))["args"] == [
        "standalone-job",
        "--job-classname",
        "com.example.Main",
        "--job-id",
        JOB_ID,
        "--fromSavepoint",
        "s3://sp/1",
        "x",
    ]
    assert flink_conf(manifests, "demo")["pipeline.classpaths"] == ["file:///opt/flink/usrlib/job.jar"]
    assert "never-rendered" not in yaml.safe_dump_all(manifests)
    without = ClusterRequest(key=ClusterKey("team-a", "demo"), generation=5, flink_config=config)
    with pytest.raises(ValueError, match=r"request\.resource"):
        render_request(without)


def test_kubernetes_flink_config_matches_the_config_map() -> None:
    resource = seed("fraud-scoring.yaml")
    conf = kubernetes_flink_config(resource, config_of(resource), application=launch(resource))
    assert conf == flink_conf(render(resource), "fraud-scoring")


def test_pod_templates_written_as_pods_render_as_pod_templates() -> None:
    """Reference examples often write ``podTemplate`` as a whole Pod (``apiVersion``, ``kind``, a name)."""
    resource = deployment(
        {
            "mode": "standalone",
            "podTemplate": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "pod-template", "labels": {"team": "a"}},
                "spec": {"containers": [{"name": MAIN_CONTAINER}]},
            },
        }
    )
    manifests = render(resource)
    for deploy in (jm(manifests, "demo"), tm(manifests, "demo")):
        template = deploy["spec"]["template"]
        assert set(template) == {"metadata", "spec"}
        assert "name" not in template["metadata"]
        assert template["metadata"]["labels"]["team"] == "a"
    native = render(resource, mode="native")
    pod = yaml.safe_load(config_map(native, "demo")["data"][TASKMANAGER_POD_TEMPLATE_FILE])
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert pod["metadata"]["labels"]["team"] == "a"
