"""The fleet page behind the gateway (``/_fleet/``): callers are identified as for Flink's UI (a bearer token from a
real OpenID Connect provider here), see only the deployments a role binding lets them view, and take actions only
where they are operator or admin; every page request is in the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.gateway.config import parse_config
from flinkops.ports import ResourceKey
from flinkops.service import apply
from flinkops.web.app import behind_gateway
from support.fleet import with_status
from support.gateway import Pki, RunningGateway, running_gateway
from support.gateway_corpus import client, settings, token
from support.oidc import OidcProvider
from support.service import TestTarget, deployment

ADS = ResourceKey("FlinkDeployment", "ads", "conversions")
PAGE = "/_fleet/namespaces/ads/flinkdeployments/conversions"


@pytest.fixture
def gateway(provider: OidcProvider, ca: Pki, tmp_path: Path) -> Iterator[tuple[RunningGateway, TestTarget]]:
    target = TestTarget(tmp_path / "home")
    for namespace, name in (("ads", "conversions"), ("fraud", "detector")):
        d = deployment(name)
        (applied,) = apply(
            target, [d.model_copy(update={"metadata": d.metadata.model_copy(update={"namespace": namespace})})]
        )
        with_status(target.store(), applied.resource)
    config = parse_config(settings(provider.issuer, ca))

    async def upstreams(namespace: str, name: str) -> str | None:
        return None

    with running_gateway(config, upstreams, tmp_path / "audit.log", pages=behind_gateway(target)) as running:
        yield running, target


def nonce(target: TestTarget) -> int | None:
    stored = target.store().get(ADS)
    assert stored is not None and stored.spec.job is not None
    return stored.spec.job.savepoint_trigger_nonce


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_caller_sees_only_what_a_role_binding_lets_them_view(
    gateway: tuple[RunningGateway, TestTarget], provider: OidcProvider, ca: Pki
) -> None:
    running, _ = gateway
    viewer = {"Authorization": f"Bearer {token(provider, 'vera', 'ads-viewers')}"}
    with client(ca) as http:
        overview = http.get(running.url + "/_fleet/", headers=viewer)
        assert overview.status_code == 200
        assert ">conversions</a>" in overview.text and "detector" not in overview.text
        assert 'href="/ads/conversions/"' in overview.text  # its Flink UI through the gateway
        assert "127.0.0.1:8081" not in overview.text  # not the JobManager's own address
        hidden = http.get(running.url + "/_fleet/namespaces/fraud/flinkdeployments/detector", headers=viewer)
        assert hidden.status_code == 404  # the same as a name that does not exist
        assert http.get(running.url + "/_fleet/", follow_redirects=False).status_code == 401  # no credentials
        index = http.get(running.url + "/", headers=viewer)
        assert 'href="/_fleet/"' in index.text
    audit = [r for r in running.audit() if r["path"].startswith("/_fleet")]
    assert [(r["subject"], r["status"]) for r in audit if r.get("subject")] == [("vera", 200), ("vera", 404)]
    assert audit[-1]["allowed"] is False and audit[-1]["status"] == 401


def test_only_an_operator_takes_actions_from_the_page(
    gateway: tuple[RunningGateway, TestTarget], provider: OidcProvider, ca: Pki
) -> None:
    running, target = gateway
    viewer = {"Authorization": f"Bearer {token(provider, 'vera', 'ads-viewers')}"}
    operator = {"Authorization": f"Bearer {token(provider, 'otto', 'ads-operators')}"}
    with client(ca) as http:
        csrf = csrf_of(http.get(running.url + PAGE, headers=viewer).text)
        refused = http.post(running.url + PAGE + "/confirm", data={"action": "savepoint", "csrf": csrf}, headers=viewer)
        assert refused.status_code == 403
        assert "savepoint on ads/conversions: operate needs operator; the caller is viewer" in refused.text
        refused = http.post(
            running.url + PAGE + "/act", data={"action": "savepoint", "csrf": csrf, "basis": "g1"}, headers=viewer
        )
        assert refused.status_code == 403
        assert nonce(target) is None

        csrf = csrf_of(http.get(running.url + PAGE, headers=operator).text)
        confirm = http.post(
            running.url + PAGE + "/confirm", data={"action": "savepoint", "csrf": csrf}, headers=operator
        )
        assert confirm.status_code == 200 and "Confirm: savepoint ads/conversions" in confirm.text
        done = http.post(
            running.url + PAGE + "/act", data={"action": "savepoint", "csrf": csrf, "basis": "g1"}, headers=operator
        )
        assert done.status_code == 303 and done.headers["Location"] == PAGE + "?done=savepoint"
    assert nonce(target) == 1
    acted = [r for r in running.audit() if r["path"] == PAGE + "/act"]
    assert [(r["subject"], r["status"]) for r in acted] == [("vera", 403), ("otto", 303)]
