"""``service.follow`` on both kinds of target, as a waiting front end (the Airflow trigger) uses it: the resource
now, each status change as it is written, and None once it is gone. On Kubernetes that is one watch of the object
on the real API server (a field selector on its name: changes of other resources wake nothing); locally the
SQLite store read every quarter second. Nothing reconciles here: the test writes the statuses itself."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobSpec,
    JobStatus,
    ObjectMeta,
)
from flinkops.errors import NotFound
from flinkops.ports import ResourceKey
from flinkops.service import follow
from flinkops.service.target import KubernetesTarget, LocalTarget, Target
from support.kube import KubeCluster, install_crds

pytestmark = pytest.mark.integration


def deployment(name: str, namespace: str) -> FlinkDeployment:
    return FlinkDeployment(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar", parallelism=1)),
    )


@pytest.fixture(params=["local", "kubernetes"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Target, str]]:
    if request.param == "local":
        yield LocalTarget(tmp_path / "home"), "default"
        return
    kube: KubeCluster = request.getfixturevalue("kube")
    namespace = f"follow-{uuid.uuid4().hex[:6]}"
    with kube.client() as admin:
        install_crds(admin)
        admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
        try:
            yield KubernetesTarget(kubeconfig=str(kube.kubeconfig)), namespace
        finally:
            admin.delete(f"/api/v1/namespaces/{namespace}")


def collect(items: Iterator[FlinkDeployment | None], seen: list[FlinkDeployment | None]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            seen.append(item)

    return run


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not condition():
            if done.wait(0.05):
                raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
    finally:
        deadline.cancel()


def test_follow_yields_each_status_change_then_none_once_deleted(target: tuple[Target, str]) -> None:
    where, namespace = target
    store = where.store()
    key = ResourceKey("FlinkDeployment", namespace, "followed")
    stored = store.apply(deployment("followed", namespace))
    seen: list[FlinkDeployment | None] = []
    follower = threading.Thread(target=collect(follow(where, key, timeout=60), seen), daemon=True)  # type: ignore[arg-type]
    follower.start()
    wait_until(lambda: len(seen) >= 1, "the resource as it is now")
    assert isinstance(seen[0], FlinkDeployment) and seen[0].status is None
    # Another resource changing in the same namespace is not this one's news.
    store.apply(deployment("other", namespace))
    for state in ("RUNNING", "FINISHED"):
        current = store.get(key)
        assert current is not None
        status = FlinkDeploymentStatus(job_status=JobStatus(state=state))  # type: ignore[arg-type]
        store.update_status(current.model_copy(update={"status": status}))
        wait_until(
            lambda state=state: any(  # type: ignore[misc]
                r is not None and r.status is not None and r.status.job_status.state == state for r in seen
            ),
            f"the {state} status",
        )
    assert all(r is None or r.metadata.name == "followed" for r in seen)
    with contextlib.suppress(NotFound):  # no cleanup finalizer (nothing reconciles here): gone at once
        store.request_deletion(key)
    if store.get(key) is not None:  # the local store keeps it until the controller removes it
        store.remove(key)
    wait_until(lambda: bool(seen) and seen[-1] is None, "None once it is gone")
    follower.join(10)
    assert not follower.is_alive(), "following ends once the resource is gone"
    assert stored.metadata.name == "followed"
