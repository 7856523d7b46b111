"""A local S3-compatible object store (MinIO, single drive) for development and tests, plus boto3 helpers.

Why MinIO: the fraud-scoring seed needs a *versioned* bucket. MinIO's single-drive mode (one data directory,
erasure-set metadata on disk) implements bucket versioning, and keeps every object on disk across restarts;
s3proxy's filesystem backend does not implement versioning, and moto keeps everything in memory. MinIO ships
no binaries through a package registry, so it is built from source once with the local Go toolchain
(:func:`flinkops.artifacts.go_binary`, ``github.com/minio/minio`` at a pinned pseudo-version; upstream no longer
publishes releases, so the pin is the last commit). The first build takes minutes; later starts reuse it.

Everything lives in one directory::

    <data_dir>/credentials.json   root access and secret key, drawn at the first start (mode 0600)
    <data_dir>/server.json        the API and console ports, reused by later starts
    <data_dir>/data/              the drive: buckets, objects, versions; kept across stop/start
    <data_dir>/config/, certs/    MinIO's config and certificate directories (kept out of ``~/.minio``)
    <data_dir>/minio.pid          pid, kernel start time and port of the running server
    <data_dir>/minio.log          the server's output (mode 0600; ``--anonymous`` keeps keys out of it anyway)

The server binds 127.0.0.1 only: the S3 API on ``port`` (default 9000), the console address on another port
(the console itself is off: ``MINIO_BROWSER=off``), no update checks. ``healthy()`` asks
``/minio/health/live`` and also requires that MinIO does not flag itself offline (it answers 200 before its
object layer is ready, with ``x-minio-server-status: offline``). The process runs in its own session; ``stop``
signals only the recorded pid while it still has the recorded start time (the process plumbing is
:mod:`flinkops.dev.process`).

Called by: ``flinkops.dev.services`` (``flinkops dev``), the controller (through ``DevServices.s3_settings``) and
tests. Invariant: at most one server per ``data_dir``; its credentials never change once drawn.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flinkops.artifacts import go_binary
from flinkops.dev.process import HOST, ServerProcess, neighbour_port, write_private
from flinkops.errors import RuntimeFailure
from flinkops.s3 import S3Access, client

__all__ = [
    "DEFAULT_PORT",
    "MINIO_MODULE",
    "MINIO_VERSION",
    "Credentials",
    "MinioServer",
    "ensure_bucket",
    "minio_binary",
    "read_credentials",
    "s3_client",
]

MINIO_MODULE = "github.com/minio/minio"
# The module's last commit (2026-02-12), which is also what the Go proxy serves as @latest.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
DEFAULT_PORT = 9000
REGION = "us-east-1"
_CREDENTIALS = "credentials.json"
_SERVER = "server.json"
_PID_FILE = "minio.pid"
_LOG_FILE = "minio.log"
_STOP_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


def minio_binary(progress: Callable[[str], None] | None = None) -> Path:
    """The MinIO server binary (built with Go the first time)."""
    return go_binary(MINIO_MODULE, MINIO_VERSION, "minio", progress=progress)


def read_credentials(data_dir: Path) -> Credentials | None:
    """The root credentials stored in ``data_dir`` (None before the first start)."""
    try:
        data = json.loads((data_dir / _CREDENTIALS).read_text())
        return Credentials(access_key=str(data["access_key"]), secret_key=str(data["secret_key"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class MinioServer(ServerProcess):
    """One single-drive MinIO server whose state lives in ``data_dir``.

    ``port=None`` reuses the port of an earlier run in ``data_dir``, else 9000.
    """

    NAME = "the S3 server"
    PID_FILE = _PID_FILE
    LOG_FILE = _LOG_FILE

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(data_dir, port)
        configured = self._configured_ports()
        self.port = port if port is not None else (configured[0] if configured else DEFAULT_PORT)
        if configured and configured[1] != self.port:
            self.console_port = configured[1]
        else:
            self.console_port = neighbour_port(self.port)
        self.progress = progress

    # ------------------------------------------------------------------ where things are

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (path-style addressing)."""
        return f"http://{HOST}:{self.port}"

    @property
    def credentials(self) -> Credentials | None:
        return read_credentials(self.data_dir)

    @property
    def access_key(self) -> str:
        return self._require_credentials().access_key

    @property
    def secret_key(self) -> str:
        return self._require_credentials().secret_key

    @property
    def drive(self) -> Path:
        return self.data_dir / "data"

    def _require_credentials(self) -> Credentials:
        found = read_credentials(self.data_dir)
        if found is None:
            raise RuntimeFailure(f"no S3 credentials in {self.data_dir}: start the server once first")
        return found

    def _configured_ports(self) -> tuple[int, int] | None:
        try:
            data = json.loads((self.data_dir / _SERVER).read_text())
            return int(data["port"]), int(data["console_port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ------------------------------------------------------------------ state

    def healthy(self) -> bool:
        """True when ``/minio/health/live`` answers 200 and MinIO does not report itself offline."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
        try:
            conn.request("GET", "/minio/health/live")
            response = conn.getresponse()
            response.read()
            return response.status == 200 and response.getheader("x-minio-server-status") != "offline"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    # ------------------------------------------------------------------ start and stop

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (or adopt the one already running for ``data_dir``) and wait until it serves.
        The first start builds MinIO with Go (reported through ``progress``); ``timeout`` counts from the
        launch."""
        self._start(timeout)

    def stop(self, timeout: float = _STOP_GRACE_SECONDS) -> bool:
        """Stop the recorded server (SIGTERM, then SIGKILL after ``timeout``); its data stays. False when none
        was running."""
        return self._stop(timeout)

    def _launch(self) -> None:
        self._check_port(self.port)
        binary = minio_binary(self.progress)
        self.drive.mkdir(parents=True, exist_ok=True)
        credentials = read_credentials(self.data_dir)
        if credentials is None:
            credentials = Credentials(
                access_key="flinkops-" + secrets.token_hex(6), secret_key=secrets.token_urlsafe(30)
            )
            payload = {"access_key": credentials.access_key, "secret_key": credentials.secret_key}
            write_private(self.data_dir / _CREDENTIALS, json.dumps(payload, indent=1) + "\n")
        server = {"port": self.port, "console_port": self.console_port}
        (self.data_dir / _SERVER).write_text(json.dumps(server) + "\n")
        argv = [
            str(binary),
            "server",
            "--address",
            f"{HOST}:{self.port}",
            "--console-address",
            f"{HOST}:{self.console_port}",
            "--config-dir",
            str(self.data_dir / "config"),
            "--certs-dir",
            str(self.data_dir / "certs"),
            "--anonymous",
            str(self.drive),
        ]
        env = dict(
            os.environ,
            MINIO_ROOT_USER=credentials.access_key,
            MINIO_ROOT_PASSWORD=credentials.secret_key,
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
            MINIO_CALLHOME_ENABLE="off",
        )
        for name in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_VOLUMES", "MINIO_OPTS"):
            env.pop(name, None)  # a user's own MinIO settings must not leak into this server
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            self._spawn(argv, out, env=env)


# ------------------------------------------------------------------------------------------------ boto3


def s3_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    """A boto3 S3 client for a dev server at ``endpoint`` (path-style addressing, short timeouts)."""
    return client(S3Access(endpoint, access_key, secret_key, path_style=True, source="the flinkops dev S3 server"))


def ensure_bucket(client: Any, name: str, *, versioned: bool = False) -> bool:
    """Create bucket ``name`` unless it exists; True when it was created. ``versioned`` turns versioning on
    (also on an existing bucket). A versioned bucket is never turned back: versioning can only be suspended,
    and that is not this helper's call."""
    from botocore.exceptions import BotoCoreError, ClientError

    def code_of(exc: ClientError) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    created = False
    try:
        try:
            client.head_bucket(Bucket=name)
        except ClientError as exc:
            if code_of(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            try:
                client.create_bucket(Bucket=name)
                created = True
            except ClientError as create_exc:
                if code_of(create_exc) != "BucketAlreadyOwnedByYou":  # another caller was faster
                    raise
        if versioned and client.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    except (ClientError, BotoCoreError) as exc:
        what = "create or configure" if created or versioned else "create"
        raise RuntimeFailure(f"cannot {what} bucket {name!r}: {exc}") from exc
    return created
