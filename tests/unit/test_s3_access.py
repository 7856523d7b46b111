"""Where a deployment's S3 endpoint and credentials come from, and that secrets never reach config files."""

from __future__ import annotations

from flinkops.s3 import DevS3, flink_settings, resolve_s3_access

DEV = DevS3("http://127.0.0.1:9000", "dev-key", "dev-secret")


def test_configuration_wins_over_environment_and_dev_server() -> None:
    config = {"s3.endpoint": "http://127.0.0.1:9000", "s3.access-key": "cfg-key", "s3.secret-key": "cfg-secret"}
    env = {"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    access = resolve_s3_access(config, env, DEV)
    assert (access.access_key, access.secret_key, access.source) == ("cfg-key", "cfg-secret", "flinkConfiguration")


def test_environment_then_dev_server() -> None:
    env = {"AWS_ENDPOINT_URL": "http://localhost:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert resolve_s3_access({}, env, DEV).access_key == "k"
    access = resolve_s3_access({}, {}, DEV)
    assert (access.endpoint, access.access_key, access.path_style) == ("http://127.0.0.1:9000", "dev-key", True)


def test_dev_credentials_are_only_sent_to_the_dev_server() -> None:
    access = resolve_s3_access({"s3.endpoint": "http://10.0.0.5:9000"}, {}, DEV)
    assert access.access_key is None and access.source == "the AWS default chain"


def test_no_endpoint_means_aws_with_virtual_host_addressing() -> None:
    access = resolve_s3_access({}, {}, None)
    assert access.endpoint is None and not access.path_style


def test_flink_settings_keep_credentials_out_of_the_configuration() -> None:
    access = resolve_s3_access({"s3.access-key": "k", "s3.secret-key": "s"}, {}, DEV)
    config, env = flink_settings(access)
    assert config == {"s3.endpoint": "http://127.0.0.1:9000", "s3.path.style.access": "true"}
    assert env == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert "k" not in config.values() and "s" not in config.values()
