"""A real data plane for tests: one Kafka broker and one S3 store (MinIO), started once per pytest session.

Built on :class:`flinkops.dev.services.DevServices` with a private home and free ports, so a developer's own
services on the default ports (9092, 9000) are never touched, and two test sessions never share a broker.
The conftest fixture calls :func:`start_data_plane` once and :meth:`DataPlane.stop` at the end; tests that
exercise outages use :meth:`DataPlane.restart_kafka`, :meth:`DataPlane.stop_s3` and :meth:`DataPlane.start_s3`
(the ports stay the same, so clients configured with them reconnect).

The first run on a machine fetches Kafka's jars with Maven and builds MinIO with Go (minutes); the progress of
that goes to the real stderr, past pytest's capture, so a long first run does not look like a hang.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flinkops.dev.services import DevServices

__all__ = ["DataPlane", "free_port", "start_data_plane"]

SERVICES = ["kafka", "s3"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _progress(message: str) -> None:
    """Report downloads and builds (minutes, once per machine) on the real stderr; starts and stops stay quiet."""
    if message.startswith("starting ") or " ready in " in message:
        return
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[data plane] {message}\n")
    stream.flush()


@dataclass
class DataPlane:
    home: Path
    bootstrap: str
    s3_endpoint: str
    access_key: str
    secret_key: str
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def services(self) -> DevServices:
        return DevServices(self.home)

    # ------------------------------------------------------------------ outages

    def restart_kafka(self) -> None:
        """Stop the broker (a controlled shutdown) and start it again on the same port; topics and records
        stay."""
        self.services.down(["kafka"])
        self.services.up(["kafka"], {"kafka": self.ports["kafka"]}, progress=_progress)

    def stop_kafka(self) -> None:
        self.services.down(["kafka"])

    def start_kafka(self) -> None:
        self.services.up(["kafka"], {"kafka": self.ports["kafka"]}, progress=_progress)

    def stop_s3(self) -> None:
        """Stop the S3 store; its buckets and objects stay on disk."""
        self.services.down(["s3"])

    def start_s3(self) -> None:
        """Start the S3 store again on the same port with the same credentials."""
        self.services.up(["s3"], {"s3": self.ports["s3"]}, progress=_progress)

    # ------------------------------------------------------------------ using it

    def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Create a topic (True when new); the broker never creates topics on first use."""
        return self.services.create_topic(name, partitions)

    def create_bucket(self, name: str, *, versioned: bool = False) -> bool:
        return self.services.create_bucket(name, versioned=versioned)

    def s3(self) -> Any:
        """A boto3 S3 client for this store (path-style, us-east-1)."""
        from flinkops.dev.s3 import s3_client

        return s3_client(self.s3_endpoint, self.access_key, self.secret_key)

    def flink_s3_config(self) -> dict[str, str]:
        """The Flink configuration that points an S3 filesystem plugin at this store."""
        return {
            "s3.endpoint": self.s3_endpoint,
            "s3.path.style.access": "true",
            "s3.access-key": self.access_key,
            "s3.secret-key": self.secret_key,
        }

    def stop(self) -> None:
        """Stop both services (their data stays in ``home`` until the temporary directory goes)."""
        self.services.down(SERVICES)


def start_data_plane(root: Path) -> DataPlane:
    """Start Kafka and S3 with ``root`` as their flinkops home, on free ports, and wait until both answer."""
    services = DevServices(root)
    ports = {"kafka": free_port(), "s3": free_port()}
    services.up(SERVICES, ports, progress=_progress)
    settings = services.s3_settings()
    bootstrap = services.kafka_bootstrap()
    if settings is None or bootstrap is None:
        services.down(SERVICES)
        raise RuntimeError(f"the data plane in {root} did not come up: {services.status(SERVICES)}")
    return DataPlane(
        home=services.home,
        bootstrap=bootstrap,
        s3_endpoint=settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        ports=ports,
    )
