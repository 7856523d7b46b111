"""Where the gateway finds each deployment's REST API (``wiring.gateway.StoreUpstreams``), limited to the namespaces
it serves: the operator chart's gateway Deployment has read access to FlinkDeployments in the watched namespaces
only (``WATCH_NAMESPACES``), so it must neither list nor look up anything elsewhere (the API server would refuse
it: a 500 for the caller and an empty index page instead of a 404 and the served deployments)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, JobSpec, ObjectMeta
from flinkops.service.target import gateway_namespaces
from flinkops.stores.sqlite import SqliteStore
from flinkops.wiring.gateway import StoreUpstreams


def _deployment(namespace: str, name: str, rest: str) -> FlinkDeployment:
    return FlinkDeployment(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar", parallelism=1)),
        status=FlinkDeploymentStatus(cluster_info={"rest-url": rest}),
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "store.db")
    for namespace, name in (("team-a", "orders"), ("team-b", "clicks"), ("elsewhere", "secret-sauce")):
        stored = store.apply(_deployment(namespace, name, f"http://{name}:8081"))
        store.update_status(
            stored.model_copy(update={"status": _deployment(namespace, name, f"http://{name}:8081").status})
        )
    return store


def test_only_the_served_namespaces_are_listed_and_looked_up(store: SqliteStore) -> None:
    asked: list[str] = []

    def open_store() -> SqliteStore:
        asked.append("store")
        return store

    upstreams = StoreUpstreams(open_store, namespaces=("team-a", "team-b"))
    assert sorted(asyncio.run(upstreams.listing())) == [("team-a", "orders"), ("team-b", "clicks")]
    assert asyncio.run(upstreams("team-a", "orders")) == "http://orders:8081"
    asked.clear()
    assert asyncio.run(upstreams("elsewhere", "secret-sauce")) is None  # a 404, as for a deployment that is not there
    assert not asked  # not even asked: the API server would refuse it


def test_no_namespaces_means_every_namespace(store: SqliteStore) -> None:
    upstreams = StoreUpstreams(lambda: store)
    assert len(asyncio.run(upstreams.listing())) == 3
    assert asyncio.run(upstreams("elsewhere", "secret-sauce")) == "http://secret-sauce:8081"


@pytest.mark.parametrize(
    ("value", "namespaces"),
    [("", ()), ("team-a", ("team-a",)), (" team-a, team-b ,", ("team-a", "team-b"))],
)
def test_the_served_namespaces_come_from_the_charts_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, namespaces: tuple[str, ...]
) -> None:
    monkeypatch.setenv("WATCH_NAMESPACES", value)
    assert gateway_namespaces() == namespaces
