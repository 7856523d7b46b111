"""What the gateway costs: requests per second and latency through it against straight to Flink's REST API, in the
same run, on a real Flink JobManager.

One real session cluster (the wheel's Flink, a JobManager and one TaskManager); the gateway in a process of its
own (TLS, OpenID Connect bearer tokens verified against a real provider's JWKS, role bindings, the audit log on);
a load generator (aiohttp, keep-alive connections) in this process. Each path is measured twice:

* latency: ``--sequential`` requests one at a time (p50 and p99, and what the gateway adds to each);
* throughput: ``--seconds`` of ``--concurrency`` requests in flight (requests per second).

The request is ``GET /config`` (Flink answers it from memory: the gateway's share is what is measured). Goals:
at most 2 ms added at p50, at least 1,000 authorized requests per second on this machine.

Run: ``.venv/bin/python benchmarks/gateway.py [--sequential 2000] [--seconds 10] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.gateway import Pki, pki  # noqa: E402
from support.oidc import oidc_provider  # noqa: E402
from support.rawflink import RawCluster  # noqa: E402

CLIENT = "flinkops-bench"


def serve_gateway(settings: dict[str, Any], upstream: str, audit: str, ready: Any) -> None:
    """The gateway's process: its app on the configured port until terminated."""
    from aiohttp import web

    from flinkops.gateway.config import parse_config
    from flinkops.gateway.oidc import OidcProvider
    from flinkops.gateway.server import Gateway, ssl_context

    config = parse_config(settings)

    async def upstreams(namespace: str, name: str) -> str | None:
        return upstream if (namespace, name) == ("bench", "job") else None

    assert config.oidc is not None
    gateway = Gateway(config, upstreams, audit_log=Path(audit), oidc=OidcProvider(config.oidc))
    app = gateway.app()

    async def started(_: web.Application) -> None:
        ready.set()

    app.on_startup.append(started)
    web.run_app(app, host=config.host, port=config.port, ssl_context=ssl_context(config), access_log=None,
                print=None, handle_signals=True)  # fmt: skip


async def latencies(url: str, count: int, headers: dict[str, str], context: ssl.SSLContext | None) -> list[float]:
    out: list[float] = []
    connector = aiohttp.TCPConnector(limit=1, ssl=context if context is not None else False)
    async with aiohttp.ClientSession(connector=connector) as session:
        for index in range(count + 50):
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            if index >= 50:  # the first ones warm the connection and the caches
                out.append((time.perf_counter() - started) * 1000)
    return out


async def throughput(
    url: str, seconds: float, concurrency: int, headers: dict[str, str], context: ssl.SSLContext | None
) -> float:
    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context if context is not None else False)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    ca: Pki = pki(work / "pki")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with oidc_provider() as provider, RawCluster(work / "flink", slots=1) as cluster:
        cluster.start_session()
        cluster.wait_rest_ready(timeout=120)
        settings = {
            "listen": f"127.0.0.1:{port}",
            "tls": {"cert": str(ca.server_cert), "key": str(ca.server_key)},
            "oidc": {"issuer": provider.issuer, "clientId": CLIENT},
            "roles": [{"subjects": ["group:bench"], "role": "viewer", "namespace": "bench"}],
        }
        ready = multiprocessing.get_context("spawn").Event()
        process = multiprocessing.get_context("spawn").Process(
            target=serve_gateway, args=(settings, cluster.rest_url, str(work / "audit.log"), ready), daemon=True
        )
        process.start()
        try:
            assert ready.wait(60), "the gateway did not start"
            time.sleep(0.2)  # the listening socket opens right after startup hooks
            token = provider.sign(provider.claims("bench-user", CLIENT, groups=["bench"]))
            auth = {"Authorization": f"Bearer {token}"}
            context = ssl.create_default_context(cafile=str(ca.ca_file))
            straight_url = f"{cluster.rest_url}/config"
            gated_url = f"https://127.0.0.1:{port}/bench/job/config"
            print(f"Flink {cluster.rest_url}, gateway https://127.0.0.1:{port}; GET /config")
            straight = asyncio.run(latencies(straight_url, args.sequential, {}, None))
            gated = asyncio.run(latencies(gated_url, args.sequential, auth, context))
            straight_rps = asyncio.run(throughput(straight_url, args.seconds, args.concurrency, {}, None))
            gated_rps = asyncio.run(throughput(gated_url, args.seconds, args.concurrency, auth, context))
        finally:
            process.terminate()
            process.join(10)
    audited = sum(1 for _ in (work / "audit.log").open())
    p50s, p50g = statistics.median(straight), statistics.median(gated)
    p99s, p99g = percentile(straight, 0.99), percentile(gated, 0.99)
    print(f"{'':>20} {'straight':>10} {'gateway':>10} {'added / ratio':>14}")
    print(f"{'p50 ms':>20} {p50s:>10.2f} {p50g:>10.2f} {p50g - p50s:>+14.2f}")
    print(f"{'p99 ms':>20} {p99s:>10.2f} {p99g:>10.2f} {p99g - p99s:>+14.2f}")
    print(f"{'requests/s':>20} {straight_rps:>10.0f} {gated_rps:>10.0f} {gated_rps / straight_rps:>14.2f}")
    print(f"audit log: {audited} lines (one per request through the gateway)")
    print(f"goals: added p50 {p50g - p50s:.2f} ms (<= 2 ms), {gated_rps:.0f} authorized requests/s (>= 1,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
