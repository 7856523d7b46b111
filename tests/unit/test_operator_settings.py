"""How the operator reaches JobManagers' REST APIs, from its option or the environment: the Services' cluster DNS
names by default, their ClusterIPs when asked (an operator outside the cluster), and a clear refusal of anything
else (exit code 2 through the CLI)."""

from __future__ import annotations

import pytest

from flinkops.errors import InvalidInput
from flinkops.wiring.operator import settings_from_env


def test_the_rest_address_comes_from_the_option_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLINKOPS_REST_ADDRESS", raising=False)
    assert settings_from_env().rest_address == "service-dns"
    monkeypatch.setenv("FLINKOPS_REST_ADDRESS", "cluster-ip")
    assert settings_from_env().rest_address == "cluster-ip"
    assert settings_from_env(rest_address="service-dns").rest_address == "service-dns"


@pytest.mark.parametrize("option", ["node-ip", None])
def test_an_unknown_rest_address_is_refused_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch, option: str | None
) -> None:
    monkeypatch.setenv("FLINKOPS_REST_ADDRESS", "node-ip")
    with pytest.raises(InvalidInput, match=r"--rest-address.*'node-ip'.*service-dns, cluster-ip"):
        settings_from_env(rest_address=option)
