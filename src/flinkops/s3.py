"""Reaching S3 for a deployment: where the endpoint and credentials come from, checks before a deploy, and
downloads of ``s3://`` job jars.

**Resolution** (:func:`resolve_s3_access`), first match wins for each part:

* endpoint: ``s3.endpoint`` in the deployment's Flink configuration, then ``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL`` in the controller's environment, then the running ``flinkops dev`` S3 server;
  none means AWS itself.
* credentials: ``s3.access-key`` / ``s3.secret-key`` in the configuration, then ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` in the controller's environment, then the dev server's own credentials when the
  endpoint is the dev server; none means the SDKs' default chains (instance roles and the like).

**Secrets stay out of files.** :func:`flink_settings` splits the result in two: non-secret settings that go into
the rendered ``config.yaml`` (endpoint, path-style access) and the credentials, which reach the Flink
processes only as ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in their environment. Both of Flink's S3
plugins read those variables (their AWS SDK default chains), so no key is written to a config file, the
cluster record, status, or a log line. What Flink forces: a key that a user writes into
``flinkConfiguration`` is in the resource itself; flinkops still moves it to the environment.

Called by: the controller (preflight, jar downloads, rendering a cluster request) and ``describe``.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flinkops.errors import PermanentError, TemporaryError

__all__ = [
    "SECRET_CONFIG_KEYS",
    "S3Access",
    "S3Problem",
    "check_bucket",
    "client",
    "download",
    "flink_settings",
    "is_s3_uri",
    "refusal",
    "resolve_s3_access",
    "split_uri",
    "translate",
]

_ACCESS_KEYS = ("s3.access-key", "s3.access.key", "fs.s3a.access.key")
_SECRET_KEYS = ("s3.secret-key", "s3.secret.key", "fs.s3a.secret.key")
SECRET_CONFIG_KEYS = frozenset(_ACCESS_KEYS + _SECRET_KEYS)
_ENDPOINT_KEYS = ("s3.endpoint", "fs.s3a.endpoint")
_TIMEOUT_SECONDS = 5


class S3Problem(PermanentError):
    """S3 cannot be used as configured: rejected credentials, missing bucket or object."""


@dataclass(frozen=True)
class DevS3:
    """The running ``flinkops dev`` S3 server, as the controller found it."""

    endpoint: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class S3Access:
    endpoint: str | None
    access_key: str | None
    secret_key: str | None
    path_style: bool
    source: str  # where the credentials came from, for describe and error messages (never the keys)

    def describe(self) -> str:
        where = self.endpoint or "AWS (default endpoint)"
        return f"{where}, credentials from {self.source}"


def is_s3_uri(uri: str | None) -> bool:
    return bool(uri) and urllib.parse.urlparse(uri or "").scheme in ("s3", "s3a", "s3p")


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → (``bucket``, ``a/b``)."""
    parsed = urllib.parse.urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _first(config: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = str(config.get(key, "")).strip()
        if value:
            return value
    return None


def resolve_s3_access(
    config: Mapping[str, str], environ: Mapping[str, str] | None = None, dev: DevS3 | None = None
) -> S3Access:
    """Where this deployment's S3 is and how to sign in (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    endpoint = (
        _first(config, _ENDPOINT_KEYS)
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or (dev.endpoint if dev else None)
    )
    access, secret = _first(config, _ACCESS_KEYS), _first(config, _SECRET_KEYS)
    source = "flinkConfiguration"
    if not (access and secret) and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        access, secret, source = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "the environment"
    if not (access and secret) and dev is not None and endpoint and _same_endpoint(endpoint, dev.endpoint):
        access, secret, source = dev.access_key, dev.secret_key, "the flinkops dev S3 server"
    if not (access and secret):
        access = secret = None
        source = "the AWS default chain"
    path_style_value = str(config.get("s3.path.style.access", config.get("fs.s3a.path.style.access", ""))).strip()
    path_style = path_style_value.lower() == "true" if path_style_value else endpoint is not None
    return S3Access(endpoint, access, secret, path_style, source)


def _same_endpoint(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlparse(a), urllib.parse.urlparse(b)
    hosts = {"localhost", "127.0.0.1"}
    host_a = "127.0.0.1" if pa.hostname in hosts else pa.hostname
    host_b = "127.0.0.1" if pb.hostname in hosts else pb.hostname
    return (host_a, pa.port) == (host_b, pb.port)


def flink_settings(access: S3Access) -> tuple[dict[str, str], dict[str, str]]:
    """(configuration entries, process environment) that give Flink's S3 plugins this access."""
    config: dict[str, str] = {}
    if access.endpoint:
        config["s3.endpoint"] = access.endpoint
    config["s3.path.style.access"] = str(access.path_style).lower()
    env: dict[str, str] = {}
    if access.access_key and access.secret_key:
        env = {"AWS_ACCESS_KEY_ID": access.access_key, "AWS_SECRET_ACCESS_KEY": access.secret_key}
    return config, env


#: boto3's default session is not thread-safe, and until one client is made it has not cached the endpoint and S3
#: model data it parses (JSON, ~12 MiB of Python objects): threads making their first clients at once (the
#: operator's workers) would each parse and keep a copy of their own.
_CLIENT_LOCK = threading.Lock()


def client(access: S3Access) -> Any:
    """A boto3 S3 client for ``access`` with short timeouts (a check must not hang a reconcile pass). Made one at a
    time (``_CLIENT_LOCK``); the client itself is thread-safe."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=_TIMEOUT_SECONDS,
        read_timeout=30,
        retries={"max_attempts": 1},
        s3={"addressing_style": "path" if access.path_style else "auto"},
    )
    with _CLIENT_LOCK:
        return boto3.client(
            "s3",
            endpoint_url=access.endpoint,
            aws_access_key_id=access.access_key,
            aws_secret_access_key=access.secret_key,
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            config=config,
        )


_TEMPORARY_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequests",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "XMinioServerNotInitialized",
    }
)
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "403"}
)


def refusal(
    access: S3Access, code: str, status: int | None, detail: str, uri: str, *, reading_object: bool = False
) -> TemporaryError | S3Problem:
    """What an S3 error answer (``code``, HTTP ``status``) about ``uri`` means for the user. A 404 is a missing
    bucket, unless ``reading_object`` (then the object itself is missing). Busy or failing servers are
    temporary; rejected credentials, missing buckets and objects are not."""
    where = access.endpoint or "AWS S3"
    bucket, _ = split_uri(uri)
    if code in _TEMPORARY_CODES or status == 429 or (status is not None and status >= 500):
        return TemporaryError(f"S3 at {where} is busy or failing, retry later ({detail})")
    if code in _CREDENTIAL_CODES or status == 403:
        return S3Problem(
            f"S3 at {where} refused access to bucket {bucket!r}: it rejected the credentials from {access.source} "
            f"({detail}); check s3.access-key/s3.secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the "
            "bucket's policy"
        )
    if reading_object and code in ("NoSuchKey", "404", ""):
        return S3Problem(f"{uri} does not exist at {where} (404; {detail})")
    if code == "NoSuchBucket" or status == 404:
        return S3Problem(f"S3 bucket {bucket!r} of {uri!r} does not exist at {where} ({detail}); create it first")
    return S3Problem(f"S3 at {where} refused a request for {uri!r} ({detail})")


def translate(exc: Exception, access: S3Access, action: str, uri: str, *, reading_object: bool = False) -> Exception:
    """The flinkops error for a botocore exception raised while doing ``action`` on ``uri``; any other
    exception is returned as it is (callers re-raise what this returns)."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

    where = access.endpoint or "AWS S3"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = f"{action}: {error.get('Code') or status}: {error.get('Message') or exc}"
        return refusal(access, str(error.get("Code", "")), status, detail, uri, reading_object=reading_object)
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TemporaryError(
            f"S3 endpoint {where} did not answer ({action}): it is unreachable or overloaded; start it "
            f"(`flinkops dev up s3`) or fix s3.endpoint ({exc})"
        )
    if isinstance(exc, NoCredentialsError):
        return S3Problem(
            f"no S3 credentials for {where} ({action}): set s3.access-key/s3.secret-key or the AWS_* variables"
        )
    if isinstance(exc, BotoCoreError):
        return S3Problem(f"S3 at {where} failed ({action}): {type(exc).__name__}: {exc}")
    return exc


def check_bucket(access: S3Access, uri: str) -> None:
    """Raise :class:`S3Problem` unless the bucket of ``uri`` exists and these credentials may use it."""
    bucket, _ = split_uri(uri)
    try:
        client(access).head_bucket(Bucket=bucket)
    except Exception as exc:
        raise translate(exc, access, f"check bucket {bucket!r}", uri) from exc


def download(access: S3Access, uri: str, target: Path) -> Path:
    """Download object ``uri`` to ``target`` (written to a temporary name first, then renamed)."""
    bucket, key = split_uri(uri)
    partial = target.with_name(target.name + ".partial")
    try:
        client(access).download_file(bucket, key, str(partial))
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise translate(exc, access, "download", uri, reading_object=True) from exc
    partial.replace(target)
    return target
