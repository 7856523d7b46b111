"""The pods of a Flink cluster on Kubernetes: JobManager and TaskManager pod templates, main container included.

A component's template starts as the user's merged pod template (``podtemplate.merge_pod_templates``) with the
extra resources of the spec on its main container. Then, where the user's template says nothing, Pod Security
"restricted" defaults apply (non-root uid 9999, the ``flink`` user of the official image; no privilege
escalation; all capabilities dropped; RuntimeDefault seccomp), and last flinkops sets what it owns on the main
container ``flink-main-container`` (image, command and args, resources, the configuration volume, ports and
Flink's environment) the way Flink's own decorators do, with what Flink's configuration says about pods
(``podconfig.py``: tolerations, Secrets mounted or read into the environment, Prometheus reporter ports and the pod
annotations that point a Prometheus server or a Datadog Agent at them; the
node selector from ``kubernetes.<component>.node-selector``). With any HA service the JobManager advertises its pod
IP (downward API env ``_POD_IP_ADDRESS``, the name Flink's native entrypoint reads, plus ``POD_IP``;
standalone JobManagers get ``jobmanager.rpc.address=$(_POD_IP_ADDRESS)`` as a dynamic property on their
command line). A deployment's secret environment is referenced by Secret name (``envFrom``), never copied.

**Secret references** (``api.secrets``, ``${secret:k8s:<secret>/<key>}``): each becomes an env entry
``FLINKOPS_SECRET_<digest>`` with ``valueFrom.secretKeyRef`` on the main container, so the kubelet reads the Secret
(the operator never does). A ``flinkConfiguration`` key gets its value as the dynamic property
``-D <key>=$(FLINKOPS_SECRET_<digest>)`` on the container's args and a job argument ``--name=${secret:...}`` becomes
``--name=$(FLINKOPS_SECRET_<digest>)``: Kubernetes expands ``$(VAR)`` when it starts the container, Flink masks both
in its log (validation allows references only where it does), and the ConfigMap and the Deployment carry only the
reference.

:func:`flink_pod` makes the pod template of the JobManager Deployment (and of the standalone TaskManager
Deployment); :func:`native_taskmanager_template` the pod template file Flink's resource manager builds native
TaskManager pods from (Flink itself applies the tolerations, Secrets and node selector of its configuration to
those, so the file carries only the user's template, the security defaults, the metrics ports and their scrape
annotations).

**A JobManager without HA starts its job once.** An application cluster without HA has nothing to recover a job
from: a JobManager container that restarts, or a pod the ReplicaSet re-creates, would start the job again from
the restore point it was deployed with (or empty), behind the newest checkpoint. So its JobManager pods carry the
scheduling gate :data:`START_GATE` (the runtime lifts it for the first pod of a generation only and records that
pod, see ``runtime.py``), and its main container runs behind a guard that, when the container is restarted in
the same pod (a marker in an ``emptyDir`` says it ran before), waits instead of starting Flink. The operator then
sees the JobManager lost and redeploys from the newest checkpoint in storage, as the local runtime does.

Called by: ``render.render_cluster``. Invariants: pure; the user's template wins over the security defaults,
flinkops' own items (main container fields, ports, env, the configuration volume and mount) win over the
user's template, and the pod labels always include the component's ``names.selector_labels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkops.api.models import DeploymentMode
from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.api.secrets import SecretRef, arg_references, config_references
from flinkops.runtimes.kubernetes.context import RenderContext, common_labels, parse_map
from flinkops.runtimes.kubernetes.names import (
    GENERATION_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TASKMANAGER_POD_TEMPLATE_FILE,
    ApplicationLaunch,
    Component,
    child_names,
    selector_labels,
)
from flinkops.runtimes.kubernetes.podconfig import (
    metrics_ports,
    scrape_annotations,
    secret_env,
    secret_mounts,
    tolerations,
)
from flinkops.runtimes.kubernetes.podtemplate import main_container, merge_pod_templates, upsert_named
from flinkops.runtimes.kubernetes.resources import container_resources, extra_resources

__all__ = [
    "CONFIG_VOLUME",
    "FLINK_UID",
    "POD_IP_ENV",
    "STARTUP_PROBE_KEY",
    "START_GATE",
    "flink_pod",
    "has_start_gate",
    "is_start_gated",
    "native_taskmanager_template",
]

#: The ``flink`` user (and group) of the official Flink images.
FLINK_UID = 9999
CONFIG_VOLUME = "flink-config-volume"
#: The downward-API variable holding the pod IP; Flink's native entrypoint reads exactly this name.
POD_IP_ENV = "_POD_IP_ADDRESS"
STARTUP_PROBE_KEY = "kubernetes.operator.jm-deployment.startup.probe.enabled"

_DEFAULT_ENTRYPOINT = "/docker-entrypoint.sh"
#: The scheduling gate of the JobManager pods of an application cluster without HA (module docstring).
START_GATE = "flinkops.io/jobmanager-start"
# Where a native JobManager's resource manager reads the TaskManager pod template (Flink's
# ``Constants.POD_TEMPLATE_DIR_IN_POD``), whatever ``kubernetes.pod-template-file.taskmanager`` says.
_POD_TEMPLATE_VOLUME = "pod-template-volume"
_POD_TEMPLATE_DIR = "/opt/flink/pod-template"
_RUN_VOLUME = "flinkops-run"
_RUN_DIR = "/flinkops-run"
# Runs the entrypoint once per pod: a restarted container finds the marker and waits for the operator, which
# redeploys from the newest checkpoint (a second start would run the job from its old restore point). The wait
# ends on SIGTERM: the shell is the container's PID 1, which ignores signals it has no handler for, so a bare
# ``sleep`` kept a deleted pod for its whole grace period (30 s).
_START_ONCE = (
    f'if [ -e {_RUN_DIR}/started ]; then echo "flinkops: this JobManager container ran before; without HA it '
    'must not start its job again: waiting for the operator to redeploy from the newest checkpoint" >&2; '
    f"sleep 2147483647 & trap 'kill $!; exit 0' TERM INT; wait $!; exit 0; fi; : > {_RUN_DIR}/started; exec \"$@\""
)
_POD_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": FLINK_UID,
    "runAsGroup": FLINK_UID,
    "fsGroup": FLINK_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_SECURITY: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def is_start_gated(ctx: RenderContext, component: Component, application: ApplicationLaunch | None) -> bool:
    """Whether the component's pods start behind the gate: JobManagers of an application cluster without HA."""
    return component == "jobmanager" and application is not None and not ctx.ha


def has_start_gate(pod_spec: Mapping[str, Any] | None) -> bool:
    """Whether a pod spec (a pod's, or a Deployment's template's) carries :data:`START_GATE`."""
    return any(g.get("name") == START_GATE for g in (pod_spec or {}).get("schedulingGates") or [])


def _start_once(pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    """The scheduling gate, and the guard around the main container's command (module docstring)."""
    pod_spec["schedulingGates"] = upsert_named(pod_spec.get("schedulingGates"), [{"name": START_GATE}])
    pod_spec["volumes"] = upsert_named(pod_spec.get("volumes"), [{"name": _RUN_VOLUME, "emptyDir": {}}])
    container["volumeMounts"] = upsert_named(
        container.get("volumeMounts"), [{"name": _RUN_VOLUME, "mountPath": _RUN_DIR}]
    )
    container["command"] = ["/bin/sh", "-c", _START_ONCE, "flinkops-start-once", *container["command"]]


def _user_template(ctx: RenderContext, component: Component) -> dict[str, Any]:
    """The merged user template of one component, with ``resource.ephemeralStorage`` and the non-cpu/memory
    ``resources`` entries put on its main container (as the reference does before Flink decorates it)."""
    spec = ctx.spec
    part = spec.job_manager if component == "jobmanager" else spec.task_manager
    template = merge_pod_templates(spec.pod_template, part.pod_template if part else None, by_name=ctx.by_name)
    extra = extra_resources(spec, component)
    if any(extra.values()):
        resources = main_container(template).setdefault("resources", {})
        for section, values in extra.items():
            if values:
                resources.setdefault(section, {}).update(values)
    return template


def _secure(template: dict[str, Any], by_name: bool) -> None:
    """Pod Security "restricted" defaults under whatever the template sets (the template wins).

    An explicit root user (``runAsUser: 0``) without an explicit ``runAsNonRoot`` drops the non-root default
    rather than producing a pod the kubelet refuses to start.
    """
    pod_spec = template.setdefault("spec", {})
    user_pod = pod_spec.get("securityContext") or {}
    pod_context = merge_pod_templates(_POD_SECURITY, user_pod, by_name=by_name)
    if pod_context.get("runAsUser") == 0 and "runAsNonRoot" not in user_pod:
        pod_context.pop("runAsNonRoot", None)
    pod_spec["securityContext"] = pod_context
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            user = container.get("securityContext") or {}
            context = merge_pod_templates(_CONTAINER_SECURITY, user, by_name=by_name)
            if user.get("runAsUser") == 0 and "runAsNonRoot" not in user and pod_context.get("runAsNonRoot"):
                context["runAsNonRoot"] = False
            container["securityContext"] = context


def _secured_template(ctx: RenderContext, component: Component) -> tuple[dict[str, Any], dict[str, Any]]:
    """The component's user template with the security defaults, and its main container (made before the
    defaults apply, so it gets them too)."""
    template = _user_template(ctx, component)
    container = main_container(template)
    _secure(template, ctx.by_name)
    return template, container


def _escape(arg: str) -> str:
    """Kubernetes expands ``$(VAR)`` in args; a user's literal ``$(`` must survive as written."""
    return arg.replace("$(", "$$(")


def _secret_dynamic(ctx: RenderContext) -> list[str]:
    """``-D <key>=$(FLINKOPS_SECRET_...)`` for every secret reference of the configuration (two words: the form
    every entry script takes)."""
    refs = config_references(ctx.config)
    return [word for key in sorted(refs) for word in ("-D", f"{_escape(key)}=$({refs[key].env_name})")]


def _job_arg(arg: str, ref: SecretRef | None) -> str:
    if ref is None:
        return _escape(arg)
    prefix = arg[: arg.index("${secret:")]
    return f"{_escape(prefix)}$({ref.env_name})"


def _secret_env(ctx: RenderContext, component: Component, application: ApplicationLaunch | None) -> list[Any]:
    """The main container's env entries that read the referenced Secret keys (``secretKeyRef``)."""
    refs = list(config_references(ctx.config).values())
    if component == "jobmanager" and application is not None:
        refs += arg_references(application.args).values()
    entries: dict[str, dict[str, Any]] = {}
    for ref in refs:
        if ref.scheme == "k8s":
            selector = {"name": ref.name, "key": ref.key}
            entries[ref.env_name] = {"name": ref.env_name, "valueFrom": {"secretKeyRef": selector}}
    return [entries[name] for name in sorted(entries)]


def _args(ctx: RenderContext, component: Component, application: ApplicationLaunch | None) -> list[str]:
    rpc_address = f"jobmanager.rpc.address=$({POD_IP_ENV})"
    if component == "taskmanager":
        return ["taskmanager", *_secret_dynamic(ctx)]
    if ctx.mode is DeploymentMode.NATIVE:
        target = "kubernetes-application" if application else "kubernetes-session"
        return ["kubernetes-jobmanager.sh", target]
    if application is None:
        # jobmanager.sh takes dynamic properties only as a separate "-D" word: a single "-Dkey=value" word in
        # that position is read as the legacy <host> argument (and becomes "jobmanager.rpc.address=-Dkey=...").
        return ["jobmanager", *(["-D", rpc_address] if ctx.ha else []), *_secret_dynamic(ctx)]
    args = ["standalone-job"]
    if application.entry_class:
        args += ["--job-classname", _escape(application.entry_class)]
    args += ["--job-id", application.job_id]
    if ctx.allow_non_restored:
        args.append("--allowNonRestoredState")
    if ctx.restore:
        args += ["--fromSavepoint", _escape(ctx.restore)]
    if ctx.ha:
        args.append(f"-D{rpc_address}")
    refs = arg_references(application.args)
    return args + _secret_dynamic(ctx) + [_job_arg(a, refs.get(i)) for i, a in enumerate(application.args)]


def _env_from_config(config: Mapping[str, str], component: Component) -> list[dict[str, Any]]:
    """``containerized.{master,taskmanager}.env.X`` as container env (Flink's native pods get them so)."""
    prefix = "containerized.master.env." if component == "jobmanager" else "containerized.taskmanager.env."
    return [{"name": k[len(prefix) :], "value": v} for k, v in sorted(config.items()) if k.startswith(prefix)]


def _add_env_secret(container: dict[str, Any], env_secret: str | None) -> None:
    """The Secret ``env_secret`` as the container's last ``envFrom`` source (its keys win), listed once."""
    if env_secret:
        secret_ref = {"secretRef": {"name": env_secret}}
        container["envFrom"] = [*[e for e in container.get("envFrom") or [] if e != secret_ref], secret_ref]


def _set_ports(container: dict[str, Any], ports: list[dict[str, Any]]) -> None:
    """flinkops' ports on the main container, replacing any of the template's with the same name or number."""
    taken = {p["containerPort"] for p in ports}
    user_ports = [
        p for p in container.get("ports") or [] if not (isinstance(p, Mapping) and p.get("containerPort") in taken)
    ]
    container["ports"] = upsert_named(user_ports, ports)


def flink_pod(
    ctx: RenderContext,
    component: Component,
    generation: int,
    application: ApplicationLaunch | None,
    env_secret: str | None,
) -> dict[str, Any]:
    """The complete pod template of a JobManager or standalone TaskManager Deployment."""
    config = ctx.config
    template, container = _secured_template(ctx, component)
    metadata = template.setdefault("metadata", {})
    for key in ("name", "namespace"):
        metadata.pop(key, None)  # pods get their name and namespace from the Deployment, not from a template
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        **parse_map(config.get(f"kubernetes.{component}.labels")),
        **common_labels(ctx),
        **selector_labels(ctx.name, ctx.mode, component),
    }
    user_annotations = {
        **(metadata.get("annotations") or {}),
        **parse_map(config.get(f"kubernetes.{component}.annotations")),
    }
    metadata["annotations"] = {
        **scrape_annotations(config, ctx.spec.flink_configuration, user_annotations),
        **user_annotations,
        "kubectl.kubernetes.io/default-container": MAIN_CONTAINER,
        GENERATION_ANNOTATION: str(generation),
    }

    pod_spec = template["spec"]
    own_sa = config.get(f"kubernetes.{component}.service-account", "").strip()
    pod_spec["serviceAccountName"] = own_sa or config["kubernetes.service-account"]
    pod_spec.pop("serviceAccount", None)  # the deprecated alias would contradict serviceAccountName
    pod_spec["restartPolicy"] = "Always"  # the only policy a Deployment accepts
    node_selector = parse_map(config.get(f"kubernetes.{component}.node-selector"))
    if node_selector:
        pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **node_selector}
    configured = tolerations(config, component)
    if configured:
        existing = list(pod_spec.get("tolerations") or [])
        pod_spec["tolerations"] = existing + [t for t in configured if t not in existing]
    pull_secrets = [
        s.strip() for s in config.get("kubernetes.container.image.pull-secrets", "").split(";") if s.strip()
    ]
    if pull_secrets:
        pod_spec["imagePullSecrets"] = upsert_named(
            pod_spec.get("imagePullSecrets"), [{"name": s} for s in pull_secrets]
        )
    secret_volumes, secret_volume_mounts = secret_mounts(config)
    pod_spec["volumes"] = upsert_named(
        pod_spec.get("volumes"),
        [{"name": CONFIG_VOLUME, "configMap": {"name": child_names(ctx.name, ctx.mode).config_map}}, *secret_volumes],
    )

    container["image"] = ctx.image
    container["imagePullPolicy"] = ctx.pull_policy
    # The last lines of the log of a container that failed become its termination message: the operator reports
    # why a JobManager crashed (``faults.py``) without reading logs.
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    container["command"] = [config.get("kubernetes.entry.path", "").strip() or _DEFAULT_ENTRYPOINT]
    container["args"] = _args(ctx, component, application)
    container["resources"] = container_resources(config, component, container.get("resources"))
    if component == "jobmanager":
        ports = [
            {"name": "rest", "containerPort": int(config["rest.port"]), "protocol": "TCP"},
            {"name": "jobmanager-rpc", "containerPort": int(config["jobmanager.rpc.port"]), "protocol": "TCP"},
            {"name": "blobserver", "containerPort": int(config["blob.server.port"]), "protocol": "TCP"},
        ]
    else:
        ports = [{"name": "taskmanager-rpc", "containerPort": int(config["taskmanager.rpc.port"]), "protocol": "TCP"}]
    _set_ports(container, [*ports, *metrics_ports(config)])
    env: list[dict[str, Any]] = [
        *_env_from_config(config, component),
        *secret_env(config),
        *_secret_env(ctx, component, application),
        {"name": "FLINK_CONF_DIR", "value": ctx.conf_dir},
    ]
    if component == "jobmanager":
        pod_ip = {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
        env += [{"name": POD_IP_ENV, "valueFrom": pod_ip}, {"name": "POD_IP", "valueFrom": pod_ip}]
    container["env"] = upsert_named(container.get("env"), env)
    _add_env_secret(container, env_secret)
    mounts = [
        m
        for m in container.get("volumeMounts") or []
        if not (isinstance(m, Mapping) and m.get("mountPath") == ctx.conf_dir)
    ]
    container["volumeMounts"] = upsert_named(
        mounts, [{"name": CONFIG_VOLUME, "mountPath": ctx.conf_dir, "readOnly": True}, *secret_volume_mounts]
    )
    if (
        component == "jobmanager"
        and "startupProbe" not in container
        and ctx.spec.flink_configuration.get(STARTUP_PROBE_KEY, "true").strip().lower() != "false"
    ):
        # As the reference: the JobManager counts as started once its REST API answers.
        container["startupProbe"] = {
            "httpGet": {"path": "/config", "port": "rest"},
            "periodSeconds": 1,
            "failureThreshold": 2147483647,
        }
    if component == "jobmanager" and ctx.mode is DeploymentMode.NATIVE:
        template_file = {"key": TASKMANAGER_POD_TEMPLATE_FILE, "path": TASKMANAGER_POD_TEMPLATE_FILE}
        config_map = {"name": child_names(ctx.name, ctx.mode).config_map, "items": [template_file]}
        pod_spec["volumes"] = upsert_named(
            pod_spec["volumes"], [{"name": _POD_TEMPLATE_VOLUME, "configMap": config_map}]
        )
        template_mount = {"name": _POD_TEMPLATE_VOLUME, "mountPath": _POD_TEMPLATE_DIR, "readOnly": True}
        container["volumeMounts"] = upsert_named(container["volumeMounts"], [template_mount])
    if is_start_gated(ctx, component, application):
        _start_once(pod_spec, container)
    return template


def native_taskmanager_template(ctx: RenderContext, env_secret: str | None) -> dict[str, Any]:
    """The pod template file Flink's resource manager builds TaskManager pods from (native mode). Flink sets
    image, command, resources, service account and the configuration volume itself; this carries the user's
    template, the security defaults, flinkops' label and the secret environment."""
    template, container = _secured_template(ctx, "taskmanager")
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY}
    _add_env_secret(container, env_secret)
    prometheus = metrics_ports(ctx.config)
    if prometheus:
        _set_ports(container, prometheus)
        user_annotations = {
            **(metadata.get("annotations") or {}),
            **parse_map(ctx.config.get("kubernetes.taskmanager.annotations")),
        }
        scrape = scrape_annotations(ctx.config, ctx.spec.flink_configuration, user_annotations)
        if scrape:
            metadata["annotations"] = {**scrape, **(metadata.get("annotations") or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
