"""The flink-job library chart (deploy/helm/flink-job) through its example (deploy/helm/flink-job-example),
rendered by the real ``helm`` like test_helm_chart.py (no API server), and ``flinkops render-job`` on top of it.

What a job owner relies on: the example's values give exactly the golden FlinkDeployment; bad values fail at
``helm template`` naming the field; what the chart renders passes ``flinkops lint`` with no findings (the
example and a seed-shaped job with HA, a node pool and the Fluent Bit sidecar); the job's RoleBinding binds its own
ServiceAccount to the Role the operator chart already makes in each job namespace, and the library makes no Role.

The golden file changes only on purpose: FLINKOPS_REGENERATE_GOLDEN=1 rewrites it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from support.crdcheck import crd_json_schema, reference_crd
from support.helm import JOB_RULES, HelmFailed, Manifest, documents_of, helm, render

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "helm" / "flink-job-example"
GOLDEN = REPO / "tests" / "data" / "job_chart" / "state-machine.yaml"
RELEASE, NAMESPACE = "state-machine", "streaming"

# A job shaped like the metrics/Karpenter seed's: HA, its own node pool with an extra spot toleration, logs
# shipped by the Fluent Bit sidecar, the seed's include list and tags.
SEED_SHAPED = [
    "tags.env=prod",
    "tags.region=eu-west-1",
    "tags.owner=payments",
    "tags.repo=payments-flink",
    "highAvailability.enabled=true",
    "highAvailability.storageDir=s3://flink-state/payments/ha",
    "nodePool.name=payments",
    "nodePool.extraTolerations[0].key=karpenter.sh/capacity-type",
    "nodePool.extraTolerations[0].operator=Exists",
    "fluentBit.enabled=true",
    "fluentBit.output.name=cloudwatch_logs",
    "fluentBit.output.properties.region=eu-west-1",
    "fluentBit.output.properties.log_group_name=/flink/payments",
    "metrics.datadog.include={flink_taskmanager_job_task_operator_KafkaSourceReader.*,flink_jobmanager_job_uptime}",
]
# A session cluster with two jobs on it, as the EKS and data-lake seeds run theirs, standalone with an S3 plugin.
SESSION = [
    "session.enabled=true",
    "session.jobs[0].name=inventory",
    "session.jobs[0].jarURI=s3://datalake/jars/inventory.jar",
    "session.jobs[0].parallelism=4",
    "session.jobs[0].upgradeMode=stateless",
    "session.jobs[0].state=running",
    "session.jobs[1].name=orders",
    "session.jobs[1].jarURI=local:///opt/flink/examples/streaming/StateMachineExample.jar",
    "session.jobs[1].parallelism=2",
    "session.jobs[1].upgradeMode=savepoint",
    "session.jobs[1].state=running",
    "mode=standalone",
    "env.ENABLE_BUILT_IN_PLUGINS=flink-s3-fs-presto-2.2.1.jar",
]


def template(*sets: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[tuple[str, Manifest]]:
    args = ["template", release, str(EXAMPLE), "--namespace", namespace]
    for assignment in sets:
        args += ["--set", assignment]
    return documents_of(helm(*args))


def of_kind(documents: list[tuple[str, Manifest]], kind: str) -> list[Manifest]:
    return [parsed for _, parsed in documents if parsed["kind"] == kind]


def lint(tmp_path: Path, resources: list[Manifest]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(resources, sort_keys=False))
    return flinkops("lint", "-f", str(path), cwd=tmp_path)


def flinkops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), FLINKOPS_HOME=str(cwd / "home"))
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_example_values_render_exactly_the_golden_flinkdeployment() -> None:
    (text,) = [chunk for chunk, parsed in template() if parsed["kind"] == "FlinkDeployment"]
    text = "\n".join(line for line in text.splitlines() if not line.startswith("# Source:")).strip() + "\n"
    if os.environ.get("FLINKOPS_REGENERATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the chart's output changed; FLINKOPS_REGENERATE_GOLDEN=1 if on purpose"


def test_the_golden_file_carries_what_the_seed_platform_asks_for() -> None:
    """The golden file is a file a reviewer reads once; these are the parts the issue names, spelled out."""
    deployment = yaml.safe_load(GOLDEN.read_text())
    pod = deployment["spec"]["podTemplate"]
    annotations = pod["metadata"]["annotations"]
    assert yaml.safe_load(annotations["ad.datadoghq.com/tags"]) == {
        "env": "dev",
        "region": "local",
        "app": RELEASE,
        "owner": "data-platform",
        "repo": "flink-jobs",
        "job_name": RELEASE,
    }
    (instance,) = yaml.safe_load(annotations["ad.datadoghq.com/flink-main-container.instances"])
    assert instance["openmetrics_endpoint"] == "http://%%host%%:9999/metrics"
    assert "flink_jobmanager_job_uptime" in instance["metrics"]
    assert annotations["configmap.reloader.stakater.com/reload"] == f"flink-config-{RELEASE}"
    conf = deployment["spec"]["flinkConfiguration"]
    assert conf["metrics.reporter.prom.port"] == "9999"
    assert conf["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    assert pod["spec"]["nodeSelector"] == {"karpenter.sh/nodepool": "state-machine"}
    assert {"key": "flink-job", "operator": "Equal", "value": "state-machine", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    for tag in ("env", "region", "owner", "repo", "job-name"):
        assert tag in deployment["metadata"]["labels"] and tag in pod["metadata"]["labels"]
    assert deployment["spec"]["serviceAccount"] == RELEASE


@pytest.mark.parametrize(
    ("assignment", "field"),
    [
        ("job.parallelism=two", "/job/parallelism"),
        ("job.upgradeMode=snapshot", "/job/upgradeMode"),
        ("flinkVersion=v9_9", "/flinkVersion"),
        ("tags.repo=https://github.com/acme/jobs", "/tags/repo"),
        ("metrics.port=80", "/metrics/port"),
        ("jobManager.memory=lots", "/jobManager/memory"),
        ("highAvailability.enabled=true", "/highAvailability/storageDir"),  # HA needs its storage directory
        ("paralelism=2", ""),  # an unknown key (a typo) is refused, not ignored
        ("nodePool.extraTolerations[0].effect=Sometimes", "/nodePool/extraTolerations/0/effect"),
    ],
)
def test_the_schema_rejects_bad_values_naming_the_field(assignment: str, field: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        template(assignment)
    assert f"- at '{field}': " in failed.value.stderr


def test_the_example_a_seed_shaped_job_and_a_session_pass_lint_with_no_findings(tmp_path: Path) -> None:
    for sets in ([], SEED_SHAPED, SESSION):
        documents = template(*sets)
        done = lint(tmp_path, of_kind(documents, "FlinkDeployment") + of_kind(documents, "FlinkSessionJob"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "no findings" in done.stdout, done.stdout


@pytest.mark.parametrize("crd_source", ["flinkops", "reference"])
def test_what_the_chart_renders_fits_the_flinkdeployment_crd(crd_source: str) -> None:
    """Stored unchanged by an API server with flinkops' CRD (the operator chart's) and the reference operator's:
    no field the server would prune or refuse, in the example and the seed-shaped job."""
    if crd_source == "reference":
        crd = reference_crd("flinkdeployments.flink.apache.org")  # skips, saying so, without the reference
    else:
        crd = yaml.safe_load((REPO / "deploy/helm/flinkops/crds/flinkdeployments.flink.apache.org.yaml").read_text())
    if crd_source == "reference":
        session_crd = reference_crd("flinksessionjobs.flink.apache.org")
    else:
        session_crd = yaml.safe_load(
            (REPO / "deploy/helm/flinkops/crds/flinksessionjobs.flink.apache.org.yaml").read_text()
        )
    validators = {
        "FlinkDeployment": jsonschema.Draft202012Validator(crd_json_schema(crd)),
        "FlinkSessionJob": jsonschema.Draft202012Validator(crd_json_schema(session_crd)),
    }
    for sets in ([], SEED_SHAPED, SESSION):
        for _, resource in template(*sets):
            if resource["kind"] in validators:
                errors = [
                    f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                    for e in validators[resource["kind"]].iter_errors(resource)
                ]
                assert errors == []


def test_a_seed_shaped_job_has_ha_its_node_pool_and_the_fluent_bit_sidecar() -> None:
    (deployment,) = of_kind(template(*SEED_SHAPED), "FlinkDeployment")
    conf = deployment["spec"]["flinkConfiguration"]
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == "s3://flink-state/payments/ha"
    pod = deployment["spec"]["podTemplate"]["spec"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "Exists"} in pod["tolerations"]
    main, sidecar = pod["containers"]
    assert main["name"] == "flink-main-container" and sidecar["name"] == "fluent-bit"
    assert "--output=cloudwatch_logs" in sidecar["args"] and "--prop=region=eu-west-1" in sidecar["args"]
    assert {m["name"] for m in main["volumeMounts"]} == {v["name"] for v in pod["volumes"]} == {"flink-logs"}


def test_a_session_cluster_with_its_session_jobs() -> None:
    documents = template(*SESSION, release="lake")
    (deployment,) = of_kind(documents, "FlinkDeployment")
    assert "job" not in deployment["spec"] and deployment["spec"]["mode"] == "standalone"
    (main,) = deployment["spec"]["podTemplate"]["spec"]["containers"]
    assert main["env"] == [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": "flink-s3-fs-presto-2.2.1.jar"}]
    jobs = of_kind(documents, "FlinkSessionJob")
    assert [j["metadata"]["name"] for j in jobs] == ["lake-inventory", "lake-orders"]
    assert {j["spec"]["deploymentName"] for j in jobs} == {"lake"}
    assert jobs[0]["spec"]["job"] == {
        "jarURI": "s3://datalake/jars/inventory.jar",
        "parallelism": 4,
        "upgradeMode": "stateless",
        "state": "running",
    }
    with pytest.raises(HelmFailed) as failed:
        template(*SESSION, "session.jobs[0].parallelism=0")
    assert "- at '/session/jobs/0/parallelism': " in failed.value.stderr


def test_each_job_binds_its_own_account_to_the_namespace_role_the_operator_chart_makes() -> None:
    documents = template()
    assert not of_kind(documents, "Role") and not of_kind(documents, "ClusterRole")
    assert not of_kind(documents, "ClusterRoleBinding")
    (account,) = of_kind(documents, "ServiceAccount")
    (binding,) = of_kind(documents, "RoleBinding")
    assert account["metadata"] == {**account["metadata"], "name": RELEASE, "namespace": NAMESPACE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "flinkops-job"}
    # The operator chart (release "flinkops") watching this namespace renders that very Role, with the job rules.
    operator = render({"watchNamespaces": [NAMESPACE]})
    (role,) = [
        o
        for o in operator
        if o["kind"] == "Role" and o["metadata"] == {**o["metadata"], "name": "flinkops-job", "namespace": NAMESPACE}
    ]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == JOB_RULES
    # A second job in the namespace gets its own account and binding, to the same Role.
    (other,) = of_kind(template(release="fraud-scoring"), "RoleBinding")
    assert other["metadata"]["name"] != binding["metadata"]["name"]
    assert other["roleRef"] == binding["roleRef"]


def test_render_job_prints_the_flinkdeployment_for_apply(tmp_path: Path) -> None:
    values = tmp_path / "state-machine.yaml"
    values.write_text((EXAMPLE / "values.yaml").read_text())
    done = flinkops("render-job", "-f", str(values), "-n", NAMESPACE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (deployment,) = list(yaml.safe_load_all(done.stdout))
    assert deployment["kind"] == "FlinkDeployment" and deployment["metadata"]["name"] == RELEASE
    assert yaml.safe_load(GOLDEN.read_text()) == deployment
    every: list[dict[str, Any]] = list(
        yaml.safe_load_all(flinkops("render-job", "-f", str(values), "--all", cwd=tmp_path).stdout)
    )
    assert [o["kind"] for o in every] == ["ServiceAccount", "RoleBinding", "FlinkDeployment"]
    session_args = [arg for assignment in SESSION for arg in ("--set", assignment)]
    session = flinkops("render-job", "-f", str(values), *session_args, "-o", "json", cwd=tmp_path)
    assert session.returncode == 0, session.stderr
    listed = json.loads(session.stdout)
    assert listed["kind"] == "List"
    assert [o["kind"] for o in listed["items"]] == ["FlinkDeployment", "FlinkSessionJob", "FlinkSessionJob"]


def test_render_job_exits_2_naming_each_bad_field(tmp_path: Path) -> None:
    values = tmp_path / "job.yaml"
    values.write_text((EXAMPLE / "values.yaml").read_text())
    done = flinkops(
        "render-job",
        "-f",
        str(values),
        "--set",
        "job.parallelism=two",
        "--set",
        "tags.owner=a b",
        "--set",
        "nodePool.extraTolerations[0].effect=Sometimes",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    for field in ("job.parallelism:", "tags.owner:", "nodePool.extraTolerations[0].effect:"):
        assert field in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    missing = flinkops("render-job", "-f", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_render_job_outside_a_checkout_asks_for_the_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed flinkops has no charts beside it: it says where the example is and what to pass."""
    from flinkops.dev import jobchart
    from flinkops.errors import InvalidInput

    values = tmp_path / "job.yaml"
    values.write_text((EXAMPLE / "values.yaml").read_text())
    monkeypatch.setattr(jobchart, "EXAMPLE_CHART", tmp_path / "site-packages" / "deploy" / "helm" / "flink-job-example")
    with pytest.raises(InvalidInput) as refused:
        jobchart.render_job([values])
    (problem,) = refused.value.problems
    assert problem.path == "--chart" and "deploy/helm/flink-job-example" in problem.message
    (deployment,) = jobchart.render_job([values], chart=EXAMPLE)
    assert deployment["metadata"]["name"] == "job"
