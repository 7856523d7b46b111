"""The gateway on Kubernetes (the operator chart's gateway Deployment runs ``flinkops gateway run`` with the
Kubernetes target): it finds each FlinkDeployment's REST address in its status on the real API server, lets a
viewer through to it, and answers 404 for a deployment that does not exist and 503 for one whose JobManager is not
up. Nothing reconciles here: the test writes the status the operator would, with a REST address that is a
counting stand-in for the JobManager (the gateway in front of real Flink is tests/integration/test_gateway_live.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobSpec,
    JobStatus,
    LifecycleState,
    ObjectMeta,
)
from flinkops.gateway.config import parse_config
from flinkops.service.target import KubernetesTarget
from flinkops.wiring.gateway import StoreUpstreams
from support.gateway import counting_upstream, pki, running_gateway
from support.gateway_corpus import settings, tls, token
from support.kube import KubeCluster, install_crds
from support.oidc import oidc_provider

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"gw-{uuid.uuid4().hex[:6]}"
    with kube.client() as admin:
        install_crds(admin)
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        try:
            yield name
        finally:
            admin.delete(f"/api/v1/namespaces/{name}")


def deployment(name: str, namespace: str) -> FlinkDeployment:
    return FlinkDeployment(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=FlinkDeploymentSpec(job=JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar", parallelism=1)),
    )


def test_the_gateway_reads_each_deployments_rest_address_from_the_api_server(
    kube: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    target = KubernetesTarget(kubeconfig=str(kube.kubeconfig))
    store = target.store()
    with oidc_provider() as provider, counting_upstream() as upstream:
        for name, rest in (("conversions", upstream.url), ("stopped", None)):
            stored = store.apply(deployment(name, namespace))
            status = FlinkDeploymentStatus(
                job_status=JobStatus(state="RUNNING" if rest else None),  # type: ignore[arg-type]
                lifecycle_state=LifecycleState.STABLE if rest else LifecycleState.SUSPENDED,
                cluster_info={"rest-url": rest} if rest else {},
            )
            store.update_status(stored.model_copy(update={"status": status}))
        ca = pki(tmp_path / "pki")
        config = settings(provider.issuer, ca)
        config["roles"] = [{"subjects": ["group:viewers"], "role": "viewer", "namespace": namespace}]
        upstreams = StoreUpstreams(lambda: store)
        with running_gateway(parse_config(config), upstreams, tmp_path / "audit.log", listing=upstreams.listing) as gw:
            viewer = {"Authorization": f"Bearer {token(provider, 'vera', 'viewers')}"}
            with httpx.Client(verify=tls(ca), timeout=10) as http:
                through = http.get(f"{gw.url}/{namespace}/conversions/jobs/overview", headers=viewer)
                assert through.status_code == 200, through.text
                assert [p for _, p, _ in upstream.seen] == ["/jobs/overview"]
                assert http.get(f"{gw.url}/{namespace}/stopped/jobs/overview", headers=viewer).status_code == 503
                assert http.get(f"{gw.url}/{namespace}/missing/jobs/overview", headers=viewer).status_code == 404
                index = http.get(f"{gw.url}/", headers=viewer).text
                assert f"{namespace}/conversions" in index and f"{namespace}/stopped" in index
