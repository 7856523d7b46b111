"""Flink REST clients kept across passes: one per JobManager endpoint and timeout, reusing its connection.

A controller observes every cluster it manages every few seconds. Building an httpx client, opening a TCP
connection and closing both again for each pass cost more CPU than the two requests of a steady pass; a client
kept per endpoint sends them over the connection it already has (HTTP keep-alive, kept as long as the client:
Flink's REST server does not close idle connections). A connection the JobManager closed in between is noticed
by the connection pool before it is reused, and a JobManager that moved (a new cluster, a new leader) has a new
URL and so a new client.

``RestClientPool`` is a ``FlinkApiFactory``: callers use what it returns exactly like a fresh client (``with
pool(url, timeout) as rest: ...``); leaving the ``with`` block, or ``close()``, keeps the client open for the next
caller. Clients unused for ``idle_seconds`` (the endpoint of a deleted cluster) are closed by a later call;
``close()`` on the pool closes all of them.

Called by: ``flinkops.wiring`` (the local daemon's and the operator's controllers). Thread-safe: the operator's
worker threads may share one pool.
"""

from __future__ import annotations

import threading
import time

import httpx

from flinkops.flink.rest import FlinkRestClient

__all__ = ["RestClientPool"]

_SWEEP_EVERY_SECONDS = 30.0


class _PooledClient(FlinkRestClient):
    """A client owned by the pool: its users' ``close()`` (and so the end of their ``with``) keeps it open."""

    def close(self) -> None:
        """Kept open for the next pass; the pool closes it when it is no longer used."""

    def dispose(self) -> None:
        super().close()


class RestClientPool:
    def __init__(self, *, idle_seconds: float = 300.0, transport: httpx.BaseTransport | None = None) -> None:
        self.idle_seconds = idle_seconds
        self._transport = transport
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, float], tuple[_PooledClient, float]] = {}
        self._swept = time.monotonic()

    def __call__(self, rest_url: str, timeout: float) -> FlinkRestClient:
        now = time.monotonic()
        key = (rest_url.rstrip("/"), timeout)
        with self._lock:
            entry = self._clients.get(key)
            client = entry[0] if entry else self._new(key[0], timeout)
            self._clients[key] = (client, now)
            idle = self._take_idle(now)
        for old in idle:
            old.dispose()
        return client

    def _new(self, rest_url: str, timeout: float) -> _PooledClient:
        # The connection outlives the passes between (a STABLE resource is looked at once a minute): Flink's REST
        # server keeps an idle connection open, and one it closed is noticed before reuse.
        return _PooledClient(rest_url, timeout=timeout, transport=self._transport, keepalive=self.idle_seconds)

    def _take_idle(self, now: float) -> list[_PooledClient]:
        """Remove the clients not used for ``idle_seconds`` (checked every half minute at most); the caller
        closes them outside the lock."""
        if now - self._swept < _SWEEP_EVERY_SECONDS:
            return []
        self._swept = now
        stale = [key for key, (_, used) in self._clients.items() if now - used > self.idle_seconds]
        return [self._clients.pop(key)[0] for key in stale]

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        """Close every client (a controller that stops)."""
        with self._lock:
            clients = [client for client, _ in self._clients.values()]
            self._clients.clear()
        for client in clients:
            client.dispose()
