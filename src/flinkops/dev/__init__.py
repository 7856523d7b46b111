"""Local stand-ins for the services a production Flink setup depends on (ZooKeeper for HA, ...), and a
Kubernetes control plane to run the Kubernetes side against.

Each runs as a plain process bound to 127.0.0.1 with its data, pid file and log in one directory, so tests and
``flinkops dev`` commands can start, check and stop it by recorded pid.

Kept import-light (names only): every ``flinkops`` command registers the ``dev`` commands at start-up, and the
servers' modules load only when one of them runs.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEFAULT_SERVICES", "PORT_OPTIONS", "SERVICES"]

SERVICES: tuple[str, ...] = ("kafka", "s3", "zookeeper", "kubernetes")
# What `flinkops dev up` starts when no service is named: the data plane. Kubernetes is opt-in (its first start
# builds three binaries, and a Flink job run locally does not need it).
DEFAULT_SERVICES: tuple[str, ...] = ("kafka", "s3", "zookeeper")
PORT_OPTIONS: Mapping[str, str] = {
    "kafka": "--kafka-port",
    "s3": "--s3-port",
    "zookeeper": "--zookeeper-port",
    "kubernetes": "--kubernetes-port",
}
