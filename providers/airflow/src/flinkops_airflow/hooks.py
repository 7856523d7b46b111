"""``FlinkopsHook``: where Flink jobs run (connection type ``flinkops``) and what can be done to them there.

A ``flinkops`` connection names a target in its extra (JSON):

* ``{"target": "local", "home": "/srv/flinkops"}``: the local runtime of a ``FLINKOPS_HOME`` on the worker's
  machine (its controller daemon is started when needed, as ``flinkops apply`` does);
* ``{"target": "kubernetes", "context": "prod-eu", "kubeconfig": "/etc/kube/config", "namespace": "batch"}``:
  an API server where the flinkops operator reconciles (no context: the kubeconfig's current one; in a pod, the
  pod's service account).

``namespace`` (default ``default``) is where resources go when neither the task nor the YAML says. Every
operation goes through ``flinkops.service``, the layer the CLI uses: the same validation (with field paths), the
same apply, the same deletion. Bad or missing settings raise ``AirflowFailException`` (a retry cannot help).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.errors import FlinkopsError
from flinkops.ports import ResourceKey
from flinkops.service.target import KubernetesTarget, LocalTarget, Target

__all__ = ["FlinkopsHook", "FlinkopsSettings"]

Resource = FlinkDeployment | FlinkSessionJob
TARGETS = ("local", "kubernetes")


@dataclass(frozen=True)
class FlinkopsSettings:
    """A ``flinkops`` connection's extra, checked."""

    target: str = "local"
    home: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "default"

    @classmethod
    def from_extra(cls, conn_id: str, extra: dict[str, Any]) -> FlinkopsSettings:
        known = {"target", "home", "context", "kubeconfig", "namespace"}
        problems = [
            f"extra.{key}: not a flinkops setting (use {', '.join(sorted(known))})" for key in extra if key not in known
        ]
        target = extra.get("target", "local")
        if target not in TARGETS:
            problems.append(f"extra.target: {target!r} is not a target (use local or kubernetes)")
        for key in known - {"target"}:
            if key in extra and not isinstance(extra[key], str):
                problems.append(f"extra.{key}: must be a string")
        if target == "kubernetes" and extra.get("home"):
            problems.append("extra.home: only for target local (a Kubernetes target has no FLINKOPS_HOME)")
        if problems:
            raise AirflowFailException(f"flinkops connection {conn_id!r} is invalid: " + "; ".join(problems))
        return cls(**{key: value for key, value in extra.items() if key in known})

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _missing(conn_id: str) -> AirflowFailException:
    example = json.dumps({"target": "local", "home": "/path/to/flinkops-home"})
    return AirflowFailException(
        f"the flinkops connection {conn_id!r} is not defined: add it with `airflow connections add {conn_id} "
        f"--conn-type flinkops --conn-extra '{example}'` (or target kubernetes with context, namespace), or set "
        f"AIRFLOW_CONN_{conn_id.upper()}"
    )


def _settings_of(conn_id: str, conn: Any) -> FlinkopsSettings:
    if conn.conn_type and conn.conn_type != FlinkopsHook.conn_type:
        raise AirflowFailException(
            f"connection {conn_id!r} has type {conn.conn_type!r}; a flinkops task needs one of type flinkops"
        )
    extra = conn.extra_dejson
    if not isinstance(extra, dict):
        raise AirflowFailException(f"flinkops connection {conn_id!r}: extra must be a JSON object")
    return FlinkopsSettings.from_extra(conn_id, extra)


class FlinkopsHook(BaseHook):
    """The target a ``flinkops`` connection names, and the operations a task needs on it."""

    conn_name_attr = "flinkops_conn_id"
    default_conn_name = "flinkops_default"
    conn_type = "flinkops"
    hook_name = "flinkops"

    def __init__(self, flinkops_conn_id: str = default_conn_name, *, settings: FlinkopsSettings | None = None) -> None:
        super().__init__()
        self.flinkops_conn_id = flinkops_conn_id
        self._settings = settings
        self._target: Target | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "port", "login", "password", "schema"],
            "relabeling": {},
            "placeholders": {
                "extra": json.dumps({"target": "local", "home": "/srv/flinkops", "namespace": "default"}),
            },
        }

    # ------------------------------------------------------------------ settings

    @property
    def settings(self) -> FlinkopsSettings:
        if self._settings is None:
            try:
                conn = self.get_connection(self.flinkops_conn_id)
            except AirflowNotFoundException:
                raise _missing(self.flinkops_conn_id) from None
            self._settings = _settings_of(self.flinkops_conn_id, conn)
        return self._settings

    @classmethod
    async def asettings(cls, conn_id: str) -> FlinkopsSettings:
        """The settings, read without blocking the triggerer's event loop."""
        try:
            conn = await cls.aget_connection(conn_id)
        except AirflowNotFoundException:
            raise _missing(conn_id) from None
        return _settings_of(conn_id, conn)

    def get_conn(self) -> Target:
        """The flinkops target (``flinkops.service.LocalTarget`` or ``KubernetesTarget``)."""
        if self._target is None:
            s = self.settings
            if s.target == "kubernetes":
                self._target = KubernetesTarget(context=s.context, kubeconfig=s.kubeconfig)
            else:
                self._target = LocalTarget(Path(s.home).expanduser() if s.home else None)
        return self._target

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    # ------------------------------------------------------------------ operations

    def load(self, documents: list[dict[str, Any]], *, source: str, base: Path) -> list[Resource]:
        """The resources in ``documents`` checked as flinkops checks a YAML file (``InvalidInput`` with every
        problem and its field path); relative local paths resolve against ``base``."""
        from flinkops.service.inputs import load_objects

        return load_objects(self.get_conn(), documents, source, base)

    def apply(self, resources: list[Resource]) -> list[Any]:
        """Validate the batch as a whole, then write it (``flinkops.service.apply``)."""
        from flinkops.service.applying import apply

        return apply(self.get_conn(), resources)

    def get(self, key: ResourceKey) -> Resource | None:
        return self.get_conn().store().get(key)

    def follow(self, key: ResourceKey, timeout: float) -> Iterator[Resource | None]:
        """The resource now and on each change (a watch on Kubernetes; locally the store read ten times a second,
        a fraction of a millisecond each: the job's end reaches the task within 2 s)."""
        from flinkops.service.following import follow

        return follow(self.get_conn(), key, timeout=timeout, interval=0.1)

    def delete(self, key: ResourceKey, *, wait: bool = True, timeout: float = 120.0) -> bool:
        """Tear the resource down (checkpoints and savepoints are kept); False when it was gone already."""
        from flinkops.service.changes import request_deletion, wait_deleted

        target = self.get_conn()
        if target.store().get(key) is None:
            return False
        deletion = request_deletion(target, key)
        if wait and not deletion.gone:
            wait_deleted(target, key, timeout)
        return True

    def tear_down(self, key: ResourceKey, *, savepoint: bool) -> None:
        """What a killed task does to its resource: a savepoint first when asked (a failed one is logged, not
        fatal: the deletion matters more), then the deletion, waited for."""
        if savepoint:
            try:
                self.log.info("savepoint of %s before deleting it: %s", key, self.savepoint(key.name, key.namespace))
            except FlinkopsError as exc:
                self.log.warning("no savepoint of %s before deleting it: %s", key, exc)
        self.delete(key, wait=True)
        self.log.info("deleted %s: the task was killed", key)

    def savepoint(self, name: str, namespace: str, *, timeout: float = 300.0) -> str:
        """Take a savepoint of the running job now; its location."""
        from flinkops.service.snapshots import savepoint

        taken = savepoint(self.get_conn(), name, namespace, wait=True, timeout=timeout)
        assert taken is not None
        return taken.location

    def ui_url(self, resource: Resource) -> str | None:
        """The Flink web UI of the deployment (of its session cluster, for a session job), once it is up."""
        cluster: Resource | None = resource
        if isinstance(resource, FlinkSessionJob):
            cluster = self.get(
                ResourceKey("FlinkDeployment", resource.metadata.namespace, resource.spec.deployment_name)
            )
        if not isinstance(cluster, FlinkDeployment) or cluster.status is None:
            return None
        url = cluster.status.cluster_info.get("rest-url")
        return str(url) if url else None
