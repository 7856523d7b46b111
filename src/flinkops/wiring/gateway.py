"""The gateway's wiring: where each deployment's REST API is (``status.clusterInfo["rest-url"]`` in the store the
target has: the local SQLite store, or the API server through the Kubernetes store; read at most once a second per
deployment), and on the local runtime the gateway's process next to the controller.

Locally ``<home>/gateway.yaml`` turns it on: the controller daemon starts ``flinkops gateway run`` beside itself and
stops it when it stops. Flink's REST API binds 127.0.0.1 on the local runtime, so the gateway is the door from
outside. On Kubernetes the operator chart runs it as one Deployment (``gateway.enabled``), reading the
FlinkDeployments of the namespaces it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from aiohttp import web

from flinkops.gateway.config import GatewayConfig, load_config
from flinkops.gateway.oidc import OidcProvider
from flinkops.gateway.server import Gateway, Pages, ssl_context
from flinkops.ports import ResourceKey, ResourceStore

__all__ = [
    "CONFIG_FILE",
    "StoreUpstreams",
    "audit_path",
    "beside_the_controller",
    "config_path",
    "gateway_for",
    "serve",
]

log = logging.getLogger("flinkops.gateway")

CONFIG_FILE = "gateway.yaml"
LOG_FILE = "gateway.log"
_FRESH_SECONDS = 1.0


def config_path(home: Path) -> Path:
    return home / CONFIG_FILE


class StoreUpstreams:
    """Deployments' REST addresses from a store (``open_store()`` gives it), each remembered for a second (the
    gateway answers many requests per second; a JobManager's address changes only when it restarts).

    ``namespaces``: the ones served (empty: all). A deployment elsewhere is not there (a 404), without asking the
    store: on Kubernetes the gateway may read FlinkDeployments only in the namespaces the chart gave it."""

    def __init__(self, open_store: Callable[[], ResourceStore], namespaces: Collection[str] = ()) -> None:
        self.open_store = open_store
        self.namespaces = tuple(namespaces)
        self._known: dict[tuple[str, str], tuple[str | None, float]] = {}

    def _read(self, namespace: str, name: str) -> str | None:
        if self.namespaces and namespace not in self.namespaces:
            return None
        resource = self.open_store().get(ResourceKey("FlinkDeployment", namespace, name))
        if resource is None:
            return None
        status = resource.status
        info = getattr(status, "cluster_info", None) or {}
        return str(info.get("rest-url") or "")

    async def __call__(self, namespace: str, name: str) -> str | None:
        now = time.monotonic()
        known = self._known.get((namespace, name))
        if known is not None and now - known[1] < _FRESH_SECONDS:
            return known[0]
        url = await asyncio.to_thread(self._read, namespace, name)
        self._known[(namespace, name)] = (url, now)
        return url

    async def listing(self) -> list[tuple[str, str]]:
        def read() -> list[tuple[str, str]]:
            store = self.open_store()
            scopes: tuple[str | None, ...] = self.namespaces or (None,)
            found = [r for ns in scopes for r in store.list_resources(kind="FlinkDeployment", namespace=ns)]
            return [(r.metadata.namespace, r.metadata.name) for r in found]

        return await asyncio.to_thread(read)


def audit_path(config: GatewayConfig, home: Path) -> Path:
    return config.audit_log or home / "gateway" / "audit.log"


def gateway_for(
    config: GatewayConfig,
    open_store: Callable[[], ResourceStore],
    audit: Path,
    namespaces: Collection[str] = (),
    pages: Pages | None = None,
) -> Gateway:
    upstreams = StoreUpstreams(open_store, namespaces)
    oidc = OidcProvider(config.oidc) if config.oidc is not None else None
    return Gateway(config, upstreams, audit_log=audit, oidc=oidc, listing=upstreams.listing, pages=pages)


def serve(
    config: GatewayConfig,
    open_store: Callable[[], ResourceStore],
    audit: Path,
    namespaces: Collection[str] = (),
    pages: Pages | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C (the deployments of ``namespaces``; empty: of every namespace), with the
    fleet page under ``/_fleet/`` when ``pages`` adds it."""
    gateway = gateway_for(config, open_store, audit, namespaces, pages)
    scheme = "https" if config.tls is not None else "http"
    log.info("gateway on %s://%s; audit log %s", scheme, config.listen, audit)
    web.run_app(
        gateway.app(),
        host=config.host,
        port=config.port,
        ssl_context=ssl_context(config),
        access_log=None,
        print=lambda text: log.info("%s", text.strip()),
        handle_signals=True,
    )


@contextlib.contextmanager
def beside_the_controller(home: Path) -> Iterator[subprocess.Popen[bytes] | None]:
    """While the controller runs: the gateway as its child process when ``<home>/gateway.yaml`` exists (settings
    that do not load are logged and the controller goes on without a gateway)."""
    path = config_path(home)
    if not path.is_file():
        yield None
        return
    try:
        load_config(path)
    except Exception as exc:
        log.error("gateway not started: %s", exc)
        yield None
        return
    with (home / LOG_FILE).open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flinkops", "gateway", "run", "--config", str(path)],
            env=dict(os.environ, FLINKOPS_HOME=str(home)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    log.info("gateway started (pid %s); log: %s", proc.pid, home / LOG_FILE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
