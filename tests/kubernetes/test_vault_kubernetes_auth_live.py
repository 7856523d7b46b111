"""Vault/OpenBao's Kubernetes auth for secret references, for real: an OpenBao dev server whose ``kubernetes`` auth
method asks the real API server (TokenReview) whether a service account token is valid. flinkops logs in with its
service account's token (``FLINKOPS_VAULT_AUTH=kubernetes``) and reads a ``${secret:vault:...}`` reference; a
token of a service account the Vault role does not name is refused, with a message that names the reference and
holds no value."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from flinkops.api.secrets import parse_reference
from flinkops.secrets import SecretResolver, SecretUnavailable
from support.kube import KubeCluster, service_account_token
from support.openbao import OpenBao

pytestmark = pytest.mark.integration

POLICY = 'path "secret/data/payments/*" { capabilities = ["read"] }'


@pytest.fixture
def namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"vault-{uuid.uuid4().hex[:6]}"
    with kube.client() as admin:
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        try:
            yield name
        finally:
            admin.delete(f"/api/v1/namespaces/{name}")


def test_flinkops_reads_a_vault_reference_with_its_service_accounts_token(
    kube: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    with kube.client() as admin, OpenBao(tmp_path / "bao") as bao:
        reviewer = service_account_token(admin, namespace, "bao-reviewer")
        operator_token = service_account_token(admin, namespace, "flinkops-operator")
        stranger_token = service_account_token(admin, namespace, "somebody-else")
        root = hvac.Client(url=bao.address, token=bao.token)
        root.sys.enable_auth_method("kubernetes")
        root.auth.kubernetes.configure(
            kubernetes_host=kube.server,
            kubernetes_ca_cert=Path(kube.ca_file).read_text(),
            token_reviewer_jwt=reviewer,
        )
        root.sys.create_or_update_policy("flinkops-payments", POLICY)
        root.auth.kubernetes.create_role(
            "flinkops",
            bound_service_account_names=["flinkops-operator"],
            bound_service_account_namespaces=[namespace],
            policies=["flinkops-payments"],
        )
        bao.put("payments/kafka", password="pa55-from-vault")
        reference = parse_reference("${secret:vault:secret/payments/kafka#password}")

        def resolver(token: str) -> SecretResolver:
            jwt_file = tmp_path / f"token-{uuid.uuid4().hex[:6]}"
            jwt_file.write_text(token)
            return SecretResolver(
                {
                    "VAULT_ADDR": bao.address,
                    "FLINKOPS_VAULT_AUTH": "kubernetes",
                    "FLINKOPS_VAULT_ROLE": "flinkops",
                    "FLINKOPS_VAULT_JWT_FILE": str(jwt_file),
                }
            )

        assert resolver(operator_token).resolve(reference) == "pa55-from-vault"
        with pytest.raises(SecretUnavailable) as refused:
            resolver(stranger_token).resolve(reference)
        message = str(refused.value)
        assert "secret/payments/kafka#password" in message and "kubernetes" in message
        assert "pa55-from-vault" not in message and stranger_token not in message
