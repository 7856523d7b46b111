"""The gateway in a test: certificates from a real CA (``trustme``: a CA, the gateway's server certificate for
127.0.0.1, client certificates with chosen CNs), the gateway's aiohttp app served on 127.0.0.1 from a thread of
the test process, and a counting upstream (what reached "Flink")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from flinkops.gateway.config import GatewayConfig
from flinkops.gateway.oidc import OidcProvider
from flinkops.gateway.server import Gateway, Pages, ssl_context

__all__ = ["Pki", "RunningGateway", "counting_upstream", "pki", "running_gateway", "serve"]


@dataclass
class Pki:
    root: Path
    ca: trustme.CA
    ca_file: Path
    server_cert: Path
    server_key: Path

    def client(self, cn: str, *, ca: trustme.CA | None = None) -> tuple[str, str]:
        """(certificate file, key file) of a client certificate with subject CN ``cn``, signed by this CA (or
        ``ca``)."""
        issued = (ca or self.ca).issue_cert(f"{cn.replace(':', '-').replace('_', '-')}.client.test", common_name=cn)
        stem = self.root / f"client-{abs(hash((cn, id(ca)))):x}"
        cert, key = stem.with_suffix(".pem"), stem.with_suffix(".key")
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)


def pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = root / "server.pem", root / "server.key"
    server.private_key_and_cert_chain_pem.write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    return Pki(root, ca, ca_file, cert, key)


@contextlib.contextmanager
def serve(app: web.Application, *, ssl: Any = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) from a thread with its own event loop; its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl)
        await site.start()
        server = site._server
        assert server is not None
        holder["port"] = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the test below
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder:
        raise holder["error"]
    scheme = "https" if ssl is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{holder['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


@dataclass
class Upstream:
    url: str
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextlib.contextmanager
def counting_upstream() -> Iterator[Upstream]:
    """A stand-in for a JobManager's REST API that records every request that reaches it (method, path with its
    query, headers) and answers JSON."""
    upstream = Upstream("")

    async def any_request(request: web.Request) -> web.Response:
        await request.read()
        upstream.seen.append((request.method, request.raw_path, dict(request.headers)))
        if request.raw_path.startswith("/config"):
            return web.json_response({"flink-version": "2.2.1"})
        return web.json_response({"ok": True, "path": request.raw_path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    with serve(app) as url:
        upstream.url = url
        yield upstream


@dataclass
class RunningGateway:
    url: str
    audit_log: Path

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]


@contextlib.contextmanager
def running_gateway(
    config: GatewayConfig,
    upstreams: Callable[[str, str], Awaitable[str | None]],
    audit_log: Path,
    *,
    listing: Callable[[], Awaitable[list[tuple[str, str]]]] | None = None,
    pages: Pages | None = None,
) -> Iterator[RunningGateway]:
    oidc = OidcProvider(config.oidc) if config.oidc is not None else None
    gateway = Gateway(config, upstreams, audit_log=audit_log, oidc=oidc, listing=listing, pages=pages)
    with serve(gateway.app(), ssl=ssl_context(config)) as url:
        yield RunningGateway(url, audit_log)


@contextlib.contextmanager
def counting_relay(target: str) -> Iterator[Upstream]:
    """A transparent relay to ``target`` (a real JobManager's REST API) that records every request it passes on:
    what reached Flink, counted where Flink itself keeps no count."""
    import aiohttp

    relay = Upstream("")

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        relay.seen.append((request.method, request.raw_path, dict(request.headers)))
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            hop = ("host", "content-length", "transfer-encoding", "connection")
            headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
            async with session.request(
                request.method, target.rstrip("/") + request.raw_path, headers=headers, data=body or None
            ) as answer:
                data = await answer.read()
                out = {
                    k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
                }
                return web.Response(body=data, status=answer.status, headers=out)

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", forward)
    with serve(app) as url:
        relay.url = url
        yield relay
