"""How the operator reaches JobManagers' REST APIs, from its option or the environment: the Services' cluster DNS
names by default, their ClusterIPs when asked (an operator outside the cluster), and a clear refusal of anything
else (exit code 2 through the CLI). How often it checks on what happens inside Flink, the same way."""

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


def test_the_progress_check_interval_comes_from_the_option_then_the_environment_then_ten_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLINKOPS_PROGRESS_CHECK_INTERVAL", raising=False)
    assert settings_from_env().min_requeue == 10.0
    monkeypatch.setenv("FLINKOPS_PROGRESS_CHECK_INTERVAL", "2 s")
    assert settings_from_env().min_requeue == 2.0
    assert settings_from_env(progress_check="500 ms").min_requeue == 0.5


@pytest.mark.parametrize(
    ("option", "env", "named"),
    [("soon", "", "--progress-check-interval"), (None, "0 s", "FLINKOPS_PROGRESS_CHECK_INTERVAL")],
)
def test_a_progress_check_interval_that_is_no_positive_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, option: str | None, env: str, named: str
) -> None:
    monkeypatch.setenv("FLINKOPS_PROGRESS_CHECK_INTERVAL", env)
    with pytest.raises(InvalidInput) as refused:
        settings_from_env(progress_check=option)
    assert refused.value.problems[0].path == named
