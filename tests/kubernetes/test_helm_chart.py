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

from flinkops.gateway.config import load_config, parse_config
from flinkops.runtimes.kubernetes.names import selector_labels
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
    "gateway": {
        "watchNamespaces": ["team-a", "team-b"],
        "gateway": {
            "enabled": True,
            "tlsSecret": "gateway-tls",
            "oidc": {
                "issuer": "https://login.example.com/realms/flink",
                "clientId": "flinkops-gateway",
                "clientSecretRef": {"name": "gateway-oidc", "key": "secret"},
                "audience": ["flink-api"],
                "redirectUrl": "https://flink.example.com/_auth/callback",
            },
            "certificateRules": [{"name": "services", "regex": r"([a-z-]+)\.svc\.example\.com", "namespace": "team-a"}],
            "roles": [
                {"subjects": ["group:flink-admins"], "role": "admin"},
                {"subjects": ["cert:services"], "role": "operator", "namespace": "team-a"},
            ],
            "jars": [{"subjects": ["group:flink-admins"], "namespace": "team-b"}],
        },
    },
    "gateway-all-namespaces": {
        "watchAllNamespaces": True,
        "gateway": {"enabled": True, "tlsSecret": "gateway-tls", "certificateRules": [{"name": "ci", "exact": "ci"}]},
    },
}
WEBHOOK_SECRET = f"{RELEASE}-webhook-tls"
GATEWAY = f"{RELEASE}-gateway"
REST_PORT = 8081  # Flink's default rest.port, which flinkops renders unless a FlinkDeployment sets another


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


def operator_deployment(objects: list[Manifest]) -> Manifest:
    (found,) = [o for o in of_kind(objects, "Deployment") if o["metadata"]["name"] == RELEASE]
    return found


def container(objects: list[Manifest]) -> Manifest:
    containers = operator_deployment(objects)["spec"]["template"]["spec"]["containers"]
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
            assert subject["name"] in {container_account(rendered), "flink", GATEWAY}, subject


def container_account(objects: list[Manifest]) -> str:
    return str(operator_deployment(objects)["spec"]["template"]["spec"]["serviceAccountName"])


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
    selectors = {}
    for deployment in of_kind(rendered, "Deployment"):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels.get(k) for k in LABELS)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        selectors[pod_labels["app.kubernetes.io/component"]] = selector
    # The selectors find the operator's pods and only them (or the gateway's and only them).
    for service in of_kind(rendered, "Service"):
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        assert service["spec"]["selector"] == selectors["gateway" if component == "gateway" else "operator"]
    for budget in of_kind(rendered, "PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"] == selectors["operator"]


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


# ------------------------------------------------------------------------------------------------ the gateway

GATEWAY_DIR = "/etc/flinkops/gateway"


def gateway_objects(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"]


def gateway_pod(objects: list[Manifest]) -> Manifest:
    (deployment,) = [o for o in of_kind(objects, "Deployment") if o["metadata"]["name"] == GATEWAY]
    return dict(deployment["spec"]["template"])


def mounted_files(pod: Manifest) -> dict[str, tuple[str, str, str]]:
    """Path in the gateway container -> (ConfigMap or Secret, its name, its key), from the settings volume."""
    (mount,) = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["mountPath"] == GATEWAY_DIR]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    files = {}
    for source in volume["projected"]["sources"]:
        ((kind, ref),) = source.items()
        for item in ref["items"]:
            files[f"{GATEWAY_DIR}/{item['path']}"] = (kind, ref["name"], item["key"])
    return files


def test_the_gateway_is_off_by_default(defaults: list[Manifest]) -> None:
    assert not gateway_objects(defaults)
    assert not of_kind(defaults, "NetworkPolicy") and not of_kind(defaults, "ConfigMap")


def test_the_gateway_settings_load_with_the_mounted_certificate_and_secret(tmp_path: Path) -> None:
    """The rendered gateway.yaml is what ``flinkops gateway run`` accepts, and every file it names is a key of the
    Secret the values name, mounted where the settings say."""
    objects = render(VARIATIONS["gateway"], release=RELEASE, namespace=NAMESPACE)
    (config_map,) = of_kind(objects, "ConfigMap")
    text = config_map["data"]["gateway.yaml"]
    pod = gateway_pod(objects)
    files = mounted_files(pod)
    assert files == {
        f"{GATEWAY_DIR}/gateway.yaml": ("configMap", GATEWAY, "gateway.yaml"),
        f"{GATEWAY_DIR}/tls/tls.crt": ("secret", "gateway-tls", "tls.crt"),
        f"{GATEWAY_DIR}/tls/tls.key": ("secret", "gateway-tls", "tls.key"),
        f"{GATEWAY_DIR}/tls/ca.crt": ("secret", "gateway-tls", "ca.crt"),
        f"{GATEWAY_DIR}/oidc/secret": ("secret", "gateway-oidc", "secret"),
    }
    assert pod["spec"]["containers"][0]["command"] == [
        "flinkops",
        "gateway",
        "run",
        "--config",
        f"{GATEWAY_DIR}/gateway.yaml",
    ]
    # The files where the pod would have them, under tmp_path: the settings load and the client secret is read.
    for path, (_, _, key) in files.items():
        local = tmp_path / path.removeprefix("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text if key == "gateway.yaml" else f"{key} content\n")
    settings = load_config(tmp_path / GATEWAY_DIR.removeprefix("/") / "gateway.yaml")
    for path in (settings.tls.cert, settings.tls.key, settings.tls.client_ca) if settings.tls else ():
        assert str(path) in files
    substituted = parse_config(yaml.safe_load(text.replace(GATEWAY_DIR, str(tmp_path / GATEWAY_DIR.removeprefix("/")))))
    assert substituted.oidc is not None and substituted.oidc.secret() == "secret content"
    assert settings.listen == "0.0.0.0:8443" and settings.audit_log == Path("/dev/stdout")
    assert settings.oidc is not None
    assert (settings.oidc.issuer, settings.oidc.client_id) == (
        "https://login.example.com/realms/flink",
        "flinkops-gateway",
    )
    assert settings.oidc.audience == ["flink-api"] and settings.oidc.groups_claim == "groups"
    assert settings.oidc.redirect_url == "https://flink.example.com/_auth/callback"
    assert [(r.name, r.regex, r.namespace) for r in settings.certificate_rules] == [
        ("services", r"([a-z-]+)\.svc\.example\.com", "team-a")
    ]
    assert [(b.role, b.namespace, b.subjects) for b in settings.roles] == [
        ("admin", None, ["group:flink-admins"]),
        ("operator", "team-a", ["cert:services"]),
    ]
    assert [(j.namespace, j.subjects) for j in settings.jars] == [("team-b", ["group:flink-admins"])]


def test_without_certificate_rules_or_a_client_secret_nothing_more_is_mounted() -> None:
    objects = render(
        {"gateway": {"enabled": True, "tlsSecret": "tls", "oidc": {"issuer": "https://idp.example", "clientId": "c"}}},
        release=RELEASE,
        namespace=NAMESPACE,
    )
    (config_map,) = of_kind(objects, "ConfigMap")
    settings = parse_config(yaml.safe_load(config_map["data"]["gateway.yaml"]))
    assert settings.tls is not None and settings.tls.client_ca is None
    assert settings.oidc is not None and settings.oidc.client_secret_file is None
    assert sorted(mounted_files(gateway_pod(objects))) == [
        f"{GATEWAY_DIR}/gateway.yaml",
        f"{GATEWAY_DIR}/tls/tls.crt",
        f"{GATEWAY_DIR}/tls/tls.key",
    ]


def test_the_gateway_runs_the_operator_image_on_the_kubernetes_target() -> None:
    objects = render(VARIATIONS["gateway"], release=RELEASE, namespace=NAMESPACE)
    pod = gateway_pod(objects)
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    service = next(o for o in of_kind(objects, "Service") if o["metadata"]["name"] == GATEWAY)

    assert c["image"] == container(objects)["image"]
    assert env["FLINKOPS_TARGET"] == "kubernetes"
    assert env["WATCH_NAMESPACES"] == "team-a,team-b"  # the namespaces it may read, as the operator's
    assert pod["spec"]["serviceAccountName"] == GATEWAY
    assert c["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "https"} and c["livenessProbe"]["tcpSocket"] == {
        "port": "https"
    }
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert service["spec"]["type"] == "ClusterIP" and "sessionAffinity" not in service["spec"]
    # A settings change rolls the pods (the gateway reads its settings at start).
    other = render(
        {**VARIATIONS["gateway"], "gateway": {**VARIATIONS["gateway"]["gateway"], "roles": []}},
        release=RELEASE,
        namespace=NAMESPACE,
    )
    checksum = pod["metadata"]["annotations"]["checksum/config"]
    assert gateway_pod(other)["metadata"]["annotations"]["checksum/config"] != checksum


def test_several_gateway_replicas_keep_each_client_on_one_pod() -> None:
    """Browser sessions live in the pod's memory."""
    values = {"gateway": {**VARIATIONS["gateway"]["gateway"], "replicas": 2}}
    objects = render(values, release=RELEASE, namespace=NAMESPACE)
    service = next(o for o in of_kind(objects, "Service") if o["metadata"]["name"] == GATEWAY)
    assert service["spec"]["sessionAffinity"] == "ClientIP"


#: The gateway's only rights: reading what it proxies and what its fleet page lists.
READABLE = {
    ("flink.apache.org", "flinkdeployments"): {"get", "list", "watch"},
    ("flink.apache.org", "flinksessionjobs"): {"get", "list", "watch"},
}


def test_the_gateway_may_only_read_flinkdeployments_and_session_jobs_where_they_are_watched() -> None:
    objects = render(VARIATIONS["gateway"], release=RELEASE, namespace=NAMESPACE)
    roles = [o for o in of_kind(objects, "Role") if o["metadata"]["name"] == GATEWAY]
    assert namespaces_of(roles) == {"team-a", "team-b"}
    for role in roles:
        assert rules_of(role) == READABLE
    bindings = [o for o in of_kind(objects, "RoleBinding") if o["metadata"]["name"] == GATEWAY]
    assert namespaces_of(bindings) == {"team-a", "team-b"}
    for binding in bindings:
        assert binding["roleRef"]["name"] == GATEWAY
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": GATEWAY, "namespace": NAMESPACE}]
    assert not of_kind(objects, "ClusterRole")

    everywhere = render(VARIATIONS["gateway-all-namespaces"], release=RELEASE, namespace=NAMESPACE)
    cluster_role = next(o for o in of_kind(everywhere, "ClusterRole") if o["metadata"]["name"] == GATEWAY)
    assert rules_of(cluster_role) == READABLE
    binding = next(o for o in of_kind(everywhere, "ClusterRoleBinding") if o["metadata"]["name"] == GATEWAY)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": GATEWAY, "namespace": NAMESPACE}]
    assert not [o for o in of_kind(everywhere, "Role") if o["metadata"]["name"] == GATEWAY]


def _ports(rule: Manifest) -> set[int]:
    covered: set[int] = set()
    for port in rule["ports"]:
        assert port["protocol"] == "TCP"
        covered.update(range(port["port"], port.get("endPort", port["port"]) + 1))
    return covered


def test_only_the_gateway_and_the_operator_reach_the_jobmanagers_rest_port() -> None:
    objects = render(VARIATIONS["gateway"], release=RELEASE, namespace=NAMESPACE)
    policies = of_kind(objects, "NetworkPolicy")
    assert namespaces_of(policies) == {"team-a", "team-b"}  # the job namespaces
    gateway_labels = gateway_pod(objects)["metadata"]["labels"]
    operator_labels = operator_deployment(objects)["spec"]["template"]["metadata"]["labels"]
    for policy in policies:
        spec = policy["spec"]
        # It selects every JobManager pod flinkops renders, in either mode, and no TaskManager pod.
        selector = spec["podSelector"]["matchLabels"]
        for mode in ("native", "standalone"):
            assert selector.items() <= selector_labels("orders", mode, "jobmanager").items()
            assert not selector.items() <= selector_labels("orders", mode, "taskmanager").items()
        assert spec["policyTypes"] == ["Ingress"]
        rest_rule, other_ports = spec["ingress"]
        # The REST port: from the gateway's and the operator's pods (in the release namespace) only.
        assert _ports(rest_rule) == {REST_PORT}
        for peer in rest_rule["from"]:
            assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
        peers = [p["podSelector"]["matchLabels"] for p in rest_rule["from"]]
        assert [p.items() <= gateway_labels.items() for p in peers] == [True, False]
        assert [p.items() <= operator_labels.items() for p in peers] == [False, True]
        # Every other port as before: from anywhere (TaskManagers, scrapers, HA), the REST port excepted.
        assert "from" not in other_ports
        assert _ports(other_ports) == set(range(1, 65536)) - {REST_PORT}

    moved = render(
        {**VARIATIONS["gateway"], "gateway": {**VARIATIONS["gateway"]["gateway"], "networkPolicy": {"restPort": 9081}}},
        release=RELEASE,
        namespace=NAMESPACE,
    )
    for policy in of_kind(moved, "NetworkPolicy"):
        assert _ports(policy["spec"]["ingress"][0]) == {9081}
        assert 8081 in _ports(policy["spec"]["ingress"][1]) and 9081 not in _ports(policy["spec"]["ingress"][1])
    off = {"gateway": {**VARIATIONS["gateway"]["gateway"], "networkPolicy": {"enabled": False}}}
    assert not of_kind(render(off, release=RELEASE, namespace=NAMESPACE), "NetworkPolicy")
    elsewhere = {"gateway": {**VARIATIONS["gateway"]["gateway"], "networkPolicy": {"namespaces": ["jobs"]}}}
    assert namespaces_of(of_kind(render(elsewhere, release=RELEASE, namespace=NAMESPACE), "NetworkPolicy")) == {"jobs"}


def test_the_install_notes_say_where_the_gateway_is_and_what_it_guards() -> None:
    output = helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", values=VARIATIONS["gateway"]
    )
    notes = output.split("NOTES:", 1)[1]
    assert f"kubectl logs -n {NAMESPACE} deploy/{GATEWAY}" in notes
    assert "the Secret\ngateway-tls must exist" in notes
    assert "REST port (8081) in: team-a, team-b." in notes
    assert (
        "gateway"
        not in helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client").split("NOTES:", 1)[1]
    )


@pytest.mark.parametrize(
    ("gateway", "reason"),
    [
        (
            {"enabled": True, "oidc": {"issuer": "https://idp.example", "clientId": "c"}},
            "gateway.enabled needs gateway.tlsSecret",
        ),
        ({"enabled": True, "tlsSecret": "tls"}, "nobody could sign in"),
        (
            {"enabled": True, "tlsSecret": "tls", "oidc": {"issuer": "https://idp.example"}},
            "needs gateway.oidc.clientId",
        ),
        (
            {"enabled": True, "tlsSecret": "tls", "certificateRules": [{"name": "a", "regex": "x", "exact": "x"}]},
            "needs exactly one of regex and exact",
        ),
        ({"enabled": True, "tlsSecret": "tls", "listen": "0.0.0.0:1"}, "listen"),  # not a value: the schema says so
        ({"oidc": {"issuer": "idp.example"}}, "issuer"),
        ({"roles": [{"subjects": ["admins"], "role": "admin"}]}, "subjects"),
        ({"roles": [{"subjects": ["group:a"], "role": "owner"}]}, "role"),
        ({"networkPolicy": {"enabled": True, "ports": [8081]}}, "ports"),
    ],
)
def test_gateway_values_that_cannot_work_are_refused(gateway: Mapping[str, Any], reason: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        render({"gateway": gateway}, release=RELEASE, namespace=NAMESPACE)
    assert reason in failed.value.stderr


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
