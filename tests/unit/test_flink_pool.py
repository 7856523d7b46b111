"""The controllers' Flink REST clients are kept across passes: one per endpoint, over one kept connection.

The connection test runs a small HTTP/1.1 server on 127.0.0.1 and counts the TCP connections it accepts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import flinkops.flink.pool as pool_module
from flinkops.flink.pool import RestClientPool

JOBS = {"jobs": [{"jid": "a" * 32, "name": "j", "state": "RUNNING", "tasks": {"total": 1, "running": 1}}]}


class _Flink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Flink's REST server answers
    connections: list[int] = []

    def setup(self) -> None:
        super().setup()
        type(self).connections.append(self.client_address[1])

    def do_GET(self) -> None:
        body = json.dumps(JOBS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flink_url() -> Iterator[str]:
    _Flink.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_passes_reuse_one_client_and_one_connection_per_endpoint(flink_url: str) -> None:
    pool = RestClientPool()
    try:
        clients = set()
        for _ in range(3):  # three passes, each the way the observer uses the factory
            with pool(flink_url, 5.0) as rest:
                assert [job.state for job in rest.list_jobs()] == ["RUNNING"]
                clients.add(id(rest))
        assert len(clients) == 1 and len(pool) == 1
        assert len(_Flink.connections) == 1, "the passes share one kept TCP connection"
    finally:
        pool.close()


def test_another_endpoint_or_timeout_gets_its_own_client() -> None:
    pool = RestClientPool(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=JOBS)))
    a = pool("http://jm-a:8081", 5.0)
    assert pool("http://jm-a:8081/", 5.0) is a
    assert pool("http://jm-b:8081", 5.0) is not a
    assert pool("http://jm-a:8081", 60.0) is not a
    assert len(pool) == 3
    pool.close()
    assert len(pool) == 0


def test_clients_of_endpoints_no_longer_used_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "_SWEEP_EVERY_SECONDS", 0.0)
    pool = RestClientPool(idle_seconds=0.0, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=JOBS)))
    old = pool("http://jm-old:8081", 5.0)
    pool("http://jm-new:8081", 5.0)  # a later call closes what was idle longer than idle_seconds
    assert len(pool) == 1
    with pytest.raises(RuntimeError):
        old.list_jobs()  # closed for good: httpx refuses a closed client
    pool.close()
