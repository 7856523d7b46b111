"""The operator's Helm chart (deploy/helm/flinkops), rendered by the real ``helm`` (built from the Go module proxy,
see tests/support/helm.py) with its default values and with the variations that change what gets installed.

What must hold for every rendering: no rule grants Secrets (and no wildcard that would), the operator's rules
are exactly the documented least-privilege set, every pod meets Pod Security "restricted", every object carries
the chart's labels. Per variation: which namespaces get Roles, when a ClusterRole exists, what leader election
adds. Whether the apiserver accepts the objects is tests/kubernetes/test_helm_live.py's job.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import CHART, JOB_RULES, OPERATOR_RULES, HelmFailed, Manifest, helm, render

pytestmark = pytest.mark.integration

RELEASE, NAMESPACE = "flinkops", "flinkops-system"
REPO = Path(__file__).resolve().parents[2]

LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
)
# Every values set the chart is rendered with below; the invariants are checked on each.
VARIATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "two-namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "all-namespaces": {"watchAllNamespaces": True},
    "two-replicas": {"replicas": 2},
    "no-leader-election": {"leaderElection": {"enabled": False}},
    "bring-your-own-accounts": {
        "serviceAccount": {"create": False, "name": "ops"},
        "jobServiceAccount": {"create": False},
        "metricsService": {"enabled": False},
    },
    "webhook": {"webhook": {"enabled": True}},
    "webhook-cert-manager": {"webhook": {"enabled": True, "certManager": {"enabled": True}}},
}
WEBHOOK_SECRET = f"{RELEASE}-webhook-tls"


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    (found,) = of_kind(objects, kind)
    return found


def rules_of(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs over all of a Role's rules (ignoring resourceNames)."""
    merged: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                merged.setdefault((group, resource), set()).update(rule["verbs"])
    return merged


def operator_roles(objects: list[Manifest]) -> list[Manifest]:
    return [
        o
        for o in objects
        if o["kind"] in {"Role", "ClusterRole"} and o["metadata"]["name"] == RELEASE  # not -job/-leader-election
    ]


def namespaces_of(objects: list[Manifest]) -> set[str]:
    return {o["metadata"]["namespace"] for o in objects}


def container(objects: list[Manifest]) -> Manifest:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return dict(containers[0])


def env_of(objects: list[Manifest]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"]}


@pytest.fixture(scope="module", params=sorted(VARIATIONS))
def rendered(request: pytest.FixtureRequest) -> Iterator[list[Manifest]]:
    yield render(VARIATIONS[request.param], release=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def defaults() -> list[Manifest]:
    return render(release=RELEASE, namespace=NAMESPACE)


# ------------------------------------------------------------------------------------------------ every variation


def test_no_rule_grants_secrets_or_wildcards(rendered: list[Manifest]) -> None:
    for role in [o for o in rendered if o["kind"] in {"Role", "ClusterRole"}]:
        for rule in role["rules"]:
            # A "*" resource, verb or group would include Secrets (or grow into them) without naming them. The one
            # exception: the webhook's own certificate Secret, read and renewed by name (never created or listed).
            if "secrets" in rule["resources"]:
                assert role["metadata"]["name"] == f"{RELEASE}-webhook", role["metadata"]
                assert rule["resources"] == ["secrets"] and rule["resourceNames"] == [WEBHOOK_SECRET], rule
                assert set(rule["verbs"]) <= {"get", "update"}, rule
            assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"], role["metadata"]
            assert not rule.get("nonResourceURLs"), role["metadata"]


def test_operator_roles_hold_exactly_the_least_privilege_rules(rendered: list[Manifest]) -> None:
    roles = operator_roles(rendered)
    assert roles
    for role in roles:
        assert rules_of(role) == OPERATOR_RULES, role["metadata"]


def test_job_roles_hold_exactly_what_flink_needs(rendered: list[Manifest]) -> None:
    for role in [o for o in rendered if o["kind"] == "Role" and o["metadata"]["name"] == f"{RELEASE}-job"]:
        assert rules_of(role) == JOB_RULES, role["metadata"]


def test_every_binding_points_at_a_rendered_role_and_the_charts_accounts(rendered: list[Manifest]) -> None:
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered}
    for binding in [o for o in rendered if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}]:
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], namespace, ref["name"]) in roles, binding["metadata"]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject["name"] in {container_account(rendered), "flink"}, subject


def container_account(objects: list[Manifest]) -> str:
    return str(one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"])


def test_every_pod_meets_pod_security_restricted(rendered: list[Manifest]) -> None:
    """The "restricted" profile's checks (kubernetes.io/docs/concepts/security/pod-security-standards), plus the
    read-only root filesystem the chart adds, on every object that has a pod template."""
    pods = [o["spec"]["template"]["spec"] for o in rendered if "template" in o.get("spec", {})]
    assert pods
    for pod in pods:
        pod_context = pod.get("securityContext", {})
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), pod
        assert pod_context.get("runAsNonRoot") is True
        assert pod_context.get("runAsUser", 1) != 0
        assert pod_context.get("seccompProfile", {}).get("type") in {"RuntimeDefault", "Localhost"}
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= {"configMap", "emptyDir", "projected", "secret", "downwardAPI", "ephemeral"}, volume
        for c in pod["containers"] + pod.get("initContainers", []):
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, c["name"]
            assert context["capabilities"]["drop"] == ["ALL"], c["name"]
            assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}, c["name"]
            assert not context.get("privileged"), c["name"]
            assert context.get("runAsNonRoot", True) is True and context.get("runAsUser", 1) != 0
            assert context.get("seccompProfile", {}).get("type", "RuntimeDefault") in {"RuntimeDefault", "Localhost"}
            assert not any(p.get("hostPort") for p in c.get("ports", [])), c["name"]
            assert context["readOnlyRootFilesystem"] is True, c["name"]
            # /tmp is the one writable path, and it is a volume (an emptyDir), not the image's filesystem.
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            tmp = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
            assert "emptyDir" in tmp


def test_every_object_carries_the_charts_labels(rendered: list[Manifest]) -> None:
    for obj in rendered:
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in LABELS if not labels.get(k)]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    deployment = one(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) for k in LABELS)
    # The selectors find the operator's pods and only them.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    for service in of_kind(rendered, "Service"):
        assert service["spec"]["selector"] == selector
    for budget in of_kind(rendered, "PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"] == selector


def test_namespaced_objects_say_where_they_go(rendered: list[Manifest]) -> None:
    """``helm template`` output applied with another current namespace must land in the same places."""
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
    for obj in rendered:
        assert ("namespace" in obj["metadata"]) == (obj["kind"] not in cluster_scoped), obj["metadata"]


# ------------------------------------------------------------------------------------------------ defaults


def test_defaults_are_namespaced_to_the_release_namespace(defaults: list[Manifest]) -> None:
    assert not of_kind(defaults, "ClusterRole") and not of_kind(defaults, "ClusterRoleBinding")
    assert namespaces_of(defaults) == {NAMESPACE}
    assert env_of(defaults)["WATCH_NAMESPACES"] == NAMESPACE
    assert not of_kind(defaults, "PodDisruptionBudget")
    kinds = sorted(o["kind"] for o in defaults)
    # Roles and bindings for the operator, its leader election and Flink's job account; two accounts.
    assert kinds == sorted(["Role", "RoleBinding"] * 3 + ["ServiceAccount"] * 2 + ["Deployment", "Service"])
    # The job ServiceAccount is a second account, not the operator's.
    accounts = {o["metadata"]["name"] for o in of_kind(defaults, "ServiceAccount")}
    assert accounts == {RELEASE, "flink"}
    assert container_account(defaults) == RELEASE


def test_the_operator_container(defaults: list[Manifest]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    c = container(defaults)
    assert c["image"] == f"{values['image']['repository']}:{chart['appVersion']}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["flinkops", "operator", "run"]
    assert c["args"] == [
        "--http-port=8085",
        "--leader-election",
        f"--lease-name={RELEASE}-leader",
        "--lease-duration=15",
    ]
    env = env_of(defaults)
    assert env["OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["FLINKOPS_LOG_FORMAT"] == "json"
    assert env["FLINKOPS_PROGRESS_CHECK_INTERVAL"] == "10 s"  # the reference operator's default
    assert c["ports"] == [{"name": "http", "containerPort": 8085, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"] == values["resources"]
    service = one(defaults, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8085, "targetPort": "http", "protocol": "TCP"}]
    assert one(defaults, "Deployment")["spec"]["replicas"] == 1


def test_image_and_resources_come_from_values() -> None:
    objects = render(
        {
            "image": {"repository": "registry.example/flinkops", "tag": "9.9.9", "pullPolicy": "Always"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
            "httpPort": 9090,
        },
        release=RELEASE,
        namespace=NAMESPACE,
    )
    c = container(objects)
    assert (c["image"], c["imagePullPolicy"]) == ("registry.example/flinkops:9.9.9", "Always")
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    assert c["ports"][0]["containerPort"] == 9090 and "--http-port=9090" in c["args"]


def test_leader_election_may_touch_only_its_own_lease(defaults: list[Manifest]) -> None:
    role = next(o for o in of_kind(defaults, "Role") if o["metadata"]["name"] == f"{RELEASE}-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rules_of(role) == {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
    for rule in role["rules"]:
        # create cannot be limited by name (the Lease does not exist yet); everything else can.
        assert rule["verbs"] == ["create"] or rule.get("resourceNames") == [f"{RELEASE}-leader"], rule


# ------------------------------------------------------------------------------------------------ variations


def test_watch_namespaces_get_roles_there_and_nowhere_else() -> None:
    objects = render(VARIATIONS["two-namespaces"], release=RELEASE, namespace=NAMESPACE)
    assert {o["metadata"]["namespace"] for o in operator_roles(objects)} == {"team-a", "team-b"}
    bindings = [o for o in of_kind(objects, "RoleBinding") if o["metadata"]["name"] == RELEASE]
    assert namespaces_of(bindings) == {"team-a", "team-b"}
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    # The operator's own namespace keeps only what leader election needs.
    own = [o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == NAMESPACE]
    assert [o["metadata"]["name"] for o in own] == [f"{RELEASE}-leader-election"]
    assert not of_kind(objects, "ClusterRole")
    jobs = [o for o in of_kind(objects, "ServiceAccount") if o["metadata"]["name"] == "flink"]
    assert namespaces_of(jobs) == {"team-a", "team-b"}
    assert env_of(objects)["WATCH_NAMESPACES"] == "team-a,team-b"


def test_watch_all_namespaces_uses_a_cluster_role() -> None:
    objects = render(VARIATIONS["all-namespaces"], release=RELEASE, namespace=NAMESPACE)
    role = one(objects, "ClusterRole")
    assert rules_of(role) == OPERATOR_RULES
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RELEASE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert not [o for o in of_kind(objects, "Role") if o["metadata"]["name"] == RELEASE]
    assert env_of(objects)["WATCH_NAMESPACES"] == ""  # the operator's "every namespace"


def test_two_replicas_elect_a_leader_and_get_a_disruption_budget() -> None:
    objects = render(VARIATIONS["two-replicas"], release=RELEASE, namespace=NAMESPACE)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "strategy" not in deployment["spec"]  # rolling updates are safe behind the Lease
    assert "--leader-election" in container(objects)["args"]
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert any(o["metadata"]["name"] == f"{RELEASE}-leader-election" for o in of_kind(objects, "Role"))


def test_without_leader_election_one_operator_at_a_time() -> None:
    objects = render(VARIATIONS["no-leader-election"], release=RELEASE, namespace=NAMESPACE)
    assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "--no-leader-election" in container(objects)["args"]
    assert not [o for o in objects if o["metadata"]["name"].endswith("-leader-election")]


def test_own_accounts_and_no_metrics_service() -> None:
    objects = render(VARIATIONS["bring-your-own-accounts"], release=RELEASE, namespace=NAMESPACE)
    assert not of_kind(objects, "ServiceAccount") and not of_kind(objects, "Service")
    assert container_account(objects) == "ops"
    assert all(s["name"] == "ops" for b in of_kind(objects, "RoleBinding") for s in b["subjects"])


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"replicas": 2, "leaderElection": {"enabled": False}}, "replicas > 1 needs leaderElection.enabled=true"),
        ({"watchAllNamespaces": True, "watchNamespaces": ["a"]}, "not both"),
        ({"replica": 2}, "replica"),  # a typo is an error, not an ignored key (values.schema.json)
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
        ({"securityContext": {"runAsUser": 0}}, "runAsUser"),
        ({"serviceAccount": {"create": False}}, "serviceAccount.name is required"),
        ({"progressCheckInterval": "often"}, "progressCheckInterval"),
        ({"webhook": {"enabled": True, "failurePolicy": "Sometimes"}}, "failurePolicy"),
        ({"webhook": {"enabled": True, "timeoutSeconds": 60}}, "timeoutSeconds"),
        ({"webhook": {"certManager": {"enabled": True}}}, "webhook.certManager.enabled needs webhook.enabled=true"),
        ({"webhook": {"enabled": True, "certManager": {"issuer": "x"}}}, "issuer"),
    ],
)
def test_unsafe_or_mistyped_values_are_refused(values: Mapping[str, Any], reason: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        render(values, release=RELEASE, namespace=NAMESPACE)
    assert reason in failed.value.stderr


# ------------------------------------------------------------------------------------------------ the webhook


def test_the_webhook_is_off_by_default(defaults: list[Manifest]) -> None:
    assert not of_kind(defaults, "ValidatingWebhookConfiguration")
    assert "FLINKOPS_WEBHOOK_PORT" not in env_of(defaults)


def test_the_webhook_is_wired_to_the_operator_and_never_sees_a_delete() -> None:
    objects = render(VARIATIONS["webhook"], release=RELEASE, namespace=NAMESPACE)
    config = one(objects, "ValidatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    service = next(o for o in of_kind(objects, "Service") if o["metadata"]["name"] == f"{RELEASE}-webhook")
    env = env_of(objects)
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}

    # DELETE is not in the rules: a webhook that is down (or refuses) can never block deleting a resource.
    assert [r["operations"] for r in hook["rules"]] == [["CREATE", "UPDATE"]]
    assert hook["rules"][0]["resources"] == ["flinkdeployments", "flinksessionjobs"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"], hook["sideEffects"]) == ("Fail", 5, "None")
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": NAMESPACE,
        "path": "/validate",
        "port": 443,
    }
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    assert ports["webhook"] == 9443 and env["FLINKOPS_WEBHOOK_PORT"] == "9443"
    assert env["FLINKOPS_WEBHOOK_SERVICE"] == service["metadata"]["name"]
    assert env["FLINKOPS_WEBHOOK_SECRET"] == WEBHOOK_SECRET
    assert env["FLINKOPS_WEBHOOK_CONFIG"] == config["metadata"]["name"] == f"{RELEASE}-{NAMESPACE}"
    assert env["FLINKOPS_WEBHOOK_MUTATING"] == "true"
    # Only the watched namespaces' resources are sent; canaries never are.
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NAMESPACE]}
    ]
    assert hook["objectSelector"]["matchExpressions"][0]["key"] == "flink.apache.org/canary"
    # The operator's own writes (it never changes a spec) do not wait for its own webhook.
    assert hook["matchConditions"] == [
        {
            "name": "not-the-operator",
            "expression": f"request.userInfo.username != 'system:serviceaccount:{NAMESPACE}:{RELEASE}'",
        }
    ]


def test_the_operator_may_renew_only_its_own_secret_and_patch_only_its_own_configuration() -> None:
    objects = render(VARIATIONS["webhook"], release=RELEASE, namespace=NAMESPACE)
    secret = one(objects, "Secret")
    role = next(o for o in of_kind(objects, "Role") if o["metadata"]["name"] == f"{RELEASE}-webhook")
    (cluster_role,) = of_kind(objects, "ClusterRole")

    assert secret["metadata"]["name"] == WEBHOOK_SECRET and "data" not in secret  # the operator fills it
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [WEBHOOK_SECRET], "verbs": ["get", "update"]}
    ]
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            "resourceNames": [f"{RELEASE}-{NAMESPACE}"],
            "verbs": ["get", "patch"],
        }
    ]


def test_the_defaulting_webhook_only_labels_session_jobs_and_never_blocks() -> None:
    objects = render(VARIATIONS["webhook"], release=RELEASE, namespace=NAMESPACE)
    (hook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]

    assert hook["rules"][0]["resources"] == ["flinksessionjobs"]
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["clientConfig"]["service"]["path"] == "/mutate"
    without = render({"webhook": {"enabled": True, "mutating": False}}, release=RELEASE, namespace=NAMESPACE)
    assert not of_kind(without, "MutatingWebhookConfiguration")
    (cluster_role,) = of_kind(without, "ClusterRole")
    assert cluster_role["rules"][0]["resources"] == ["validatingwebhookconfigurations"]


def test_with_cert_manager_a_certificate_and_the_ca_injector_replace_the_operators_own() -> None:
    objects = render(VARIATIONS["webhook-cert-manager"], release=RELEASE, namespace=NAMESPACE)
    certificate = one(objects, "Certificate")
    config = one(objects, "ValidatingWebhookConfiguration")
    env = env_of(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]

    service = f"{RELEASE}-webhook"
    assert certificate["spec"]["secretName"] == WEBHOOK_SECRET
    assert f"{service}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {
        "name": f"{service}-selfsigned",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{service}"
    mutating = one(objects, "MutatingWebhookConfiguration")
    assert mutating["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{service}"
    assert env["FLINKOPS_WEBHOOK_CERT_DIR"] == "/etc/flinkops/webhook-tls"
    assert {"name": "webhook-tls", "secret": {"secretName": WEBHOOK_SECRET}} in pod["volumes"]
    # cert-manager owns the Secret: the operator only reads the mounted files, with no RBAC for it.
    assert not of_kind(objects, "Secret") and not of_kind(objects, "ClusterRole")
    own_issuer = render(
        {
            "webhook": {
                "enabled": True,
                "certManager": {"enabled": True, "issuerRef": {"name": "corp", "kind": "ClusterIssuer"}},
            }
        },
        release=RELEASE,
        namespace=NAMESPACE,
    )
    assert one(own_issuer, "Certificate")["spec"]["issuerRef"] == {"name": "corp", "kind": "ClusterIssuer"}
    assert not of_kind(own_issuer, "Issuer")


def test_watching_every_namespace_sends_every_namespaces_resources() -> None:
    objects = render({"watchAllNamespaces": True, "webhook": {"enabled": True}}, release=RELEASE, namespace=NAMESPACE)
    (hook,) = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    assert "namespaceSelector" not in hook


def test_the_install_notes_name_what_was_installed() -> None:
    """NOTES.txt only renders at install time (not in ``helm template``): a client-side dry run renders it."""
    notes = helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        values=VARIATIONS["two-namespaces"],
    ).split("NOTES:", 1)[1]
    assert "in: team-a, team-b." in notes
    assert "serviceAccount: flink" in notes
    assert f"Lease {RELEASE}-leader" in notes
    everywhere = helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        values=VARIATIONS["all-namespaces"],
    )
    assert "EVERY namespace" in everywhere.split("NOTES:", 1)[1]


def test_helm_lint_is_clean() -> None:
    for values in VARIATIONS.values():
        helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, values=values)


# ------------------------------------------------------------------------------------------------ CRDs


def _crds_module_exists() -> bool:
    return importlib.util.find_spec("flinkops.api.crds") is not None


requires_crds = pytest.mark.skipif(
    not _crds_module_exists(), reason="flinkops.api.crds (the CRD generator) does not exist yet"
)


@requires_crds
def test_the_crds_in_the_chart_are_what_flinkops_generates() -> None:
    """deploy/helm/flinkops/crds/ is scripts/gen_crds.py's output from flinkops.api.crds, byte for byte."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_crds.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@requires_crds
def test_the_crds_are_in_the_charts_crds_directory() -> None:
    from flinkops.api.crds import custom_resource_definitions

    files = sorted((CHART / "crds").glob("*.yaml"))
    found = {yaml.safe_load(f.read_text())["metadata"]["name"]: f.name for f in files}
    expected = {crd["metadata"]["name"] for crd in custom_resource_definitions()}
    assert set(found) == expected
    assert {"flinkdeployments.flink.apache.org", "flinksessionjobs.flink.apache.org"} <= expected
    # Every kind the operator's Roles name has its CRD here.
    plurals = {resource.split("/")[0] for group, resource in OPERATOR_RULES if group == "flink.apache.org"}
    assert plurals == {name.split(".")[0] for name in expected}
    # Helm installs them first (and only them) from crds/; `helm template --include-crds` shows them.
    with_crds = render(release=RELEASE, namespace=NAMESPACE, include_crds=True)
    assert {o["metadata"]["name"] for o in of_kind(with_crds, "CustomResourceDefinition")} == expected
