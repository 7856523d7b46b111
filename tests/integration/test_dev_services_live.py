"""``flinkops dev`` against the real servers: a KRaft Kafka broker and a MinIO S3 store in a private
FLINKOPS_HOME on free ports. A record goes through a topic, an object into a versioned bucket; both survive
``down`` and ``up``; a taken port is a clear error; ``status -o json`` and ``env`` describe what runs.

The first run on a machine fetches Kafka's jars and builds MinIO (minutes); later runs take well under a minute.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flinkops.dev.s3 import s3_client
from integration.flinkops_cli import Flinkops, running

pytestmark = pytest.mark.integration

TOPIC = "orders"
BUCKET = "seed"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flinkops]:
    cli = Flinkops(tmp_path_factory.mktemp("devhome"))
    try:
        yield cli
    finally:
        cli.run("dev", "down")
        for pid_file in cli.home.glob("dev/*/*.pid"):  # last resort, by recorded pid only
            pid = int(json.loads(pid_file.read_text())["pid"])
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def exports(cli: Flinkops) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in cli.ok("dev", "env").splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0]
    return values


def status(cli: Flinkops) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads(cli.ok("dev", "status", "-o", "json"))["services"]}


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 20.0) -> list[bytes]:
    """Read ``expected`` records from the start of every partition (assigned directly: no group rebalance)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
    finally:
        consumer.close()
    return values


def test_dev_services_end_to_end(dev: Flinkops) -> None:
    from confluent_kafka import Producer

    kafka_port, s3_port = free_port(), free_port()
    started = time.monotonic()
    dev.ok("dev", "up", "kafka", "s3", "--kafka-port", str(kafka_port), "--s3-port", str(s3_port), timeout=900)
    first_up = time.monotonic() - started

    states = status(dev)
    assert states["kafka"]["healthy"] and states["s3"]["healthy"], states
    assert states["kafka"]["endpoint"] == f"127.0.0.1:{kafka_port}"
    assert states["s3"]["endpoint"] == f"http://127.0.0.1:{s3_port}"
    assert not states["zookeeper"]["running"]
    env = exports(dev)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{kafka_port}"
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{s3_port}"
    assert "FLINKOPS_ZOOKEEPER" not in env
    credentials = json.loads((dev.home / "dev" / "s3" / "credentials.json").read_text())
    assert env["AWS_ACCESS_KEY_ID"] == credentials["access_key"]
    assert (dev.home / "dev" / "s3" / "credentials.json").stat().st_mode & 0o077 == 0

    # A record through a topic that had to be created first (the broker creates none on first use).
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    assert "created" in dev.ok("dev", "topic", TOPIC, "--partitions", "2")
    assert "already exists" in dev.ok("dev", "topic", TOPIC)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(TOPIC, key=b"k", value=b"order-1")
    assert producer.flush(20) == 0
    del producer  # or it keeps reconnecting (and logging) while the broker restarts below
    assert consume_all(bootstrap, TOPIC, 2, 1) == [b"order-1"]

    # An object in a versioned bucket.
    assert "created" in dev.ok("dev", "bucket", BUCKET, "--versioned")
    s3 = s3_client(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    s3.put_object(Bucket=BUCKET, Key="rules.json", Body=b'{"v": 1}')
    s3.put_object(Bucket=BUCKET, Key="rules.json", Body=b'{"v": 2}')
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="rules.json")["Versions"]) == 2

    # `up` again is a no-op; a second home cannot take the ports this one holds.
    pids = {name: states[name]["pid"] for name in ("kafka", "s3")}
    dev.ok("dev", "up", "kafka", "s3")
    assert {name: s["pid"] for name, s in status(dev).items() if name in pids} == pids
    other = Flinkops(dev.home / "other-home")
    taken = other.run("dev", "up", "s3", "--s3-port", str(s3_port))
    assert taken.code == 1, taken
    assert f"port {s3_port}" in taken.stderr and "--s3-port" in taken.stderr

    # down keeps the data; up (without ports: the remembered ones) brings it back.
    dev.ok("dev", "down", "kafka", "s3")
    assert not any(s["running"] for s in status(dev).values())
    assert dev.ok("dev", "env") == ""
    started = time.monotonic()
    dev.ok("dev", "up", "kafka", "s3")
    second_up = time.monotonic() - started
    assert status(dev)["kafka"]["endpoint"] == f"127.0.0.1:{kafka_port}"
    assert exports(dev) == env  # same ports, same credentials
    assert consume_all(bootstrap, TOPIC, 2, 1) == [b"order-1"]
    s3 = s3_client(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    assert s3.get_object(Bucket=BUCKET, Key="rules.json")["Body"].read() == b'{"v": 2}'
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"

    logs = dev.run("dev", "logs", "kafka", "--tail", "5")
    assert logs.code == 0 and len(logs.stdout.splitlines()) == 5
    print(f"first up {first_up:.1f}s, up after down {second_up:.1f}s")


def test_status_of_a_named_unhealthy_service_exits_1(dev: Flinkops) -> None:
    assert dev.run("dev", "status", "zookeeper").code == 1
    assert dev.run("dev", "status").code == 0
