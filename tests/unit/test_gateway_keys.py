"""The provider turns its signing keys while the gateway runs: a provider on 127.0.0.1 whose JWKS the test controls
(``support.jwks``), the gateway in front of a counting stand-in for Flink, real TLS, real HTTP on loopback.

What a user needs of a rotation: a token signed with the new key is let in without restarting the gateway; a
token signed with a key the JWKS no longer lists is refused once the gateway has read it again (the same token
that was let in before it, too); tokens naming made-up keys do not make the gateway ask the provider more than
once per ``jwksMinIntervalSeconds``, and do not hold up a real new key; while the JWKS endpoint is down the keys
known keep working and a token naming an unknown key is refused (401), not an error.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from flinkops.gateway.config import parse_config
from support.gateway import Pki, RunningGateway, Upstream, counting_upstream, running_gateway
from support.gateway_corpus import CLIENT, client, settings
from support.jwks import Outage, RotatingProvider, rotating_provider

#: The gateway's least time between two reads of the JWKS in these tests (10 s by default).
INTERVAL = 0.5
PATH = "/ads/conversions/jobs/overview"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with counting_upstream() as running:
        yield running


@pytest.fixture
def keys() -> Iterator[RotatingProvider]:
    with rotating_provider() as running:
        yield running


@pytest.fixture
def gateway(
    keys: RotatingProvider, ca: Pki, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    raw = settings(keys.issuer, ca)
    raw["oidc"]["jwksMinIntervalSeconds"] = INTERVAL

    async def upstreams(namespace: str, name: str) -> str | None:
        return upstream.url if (namespace, name) == ("ads", "conversions") else None

    audit = tmp_path_factory.mktemp("gateway-keys") / "audit.log"
    with running_gateway(parse_config(raw), upstreams, audit) as running:
        yield running


@pytest.fixture
def call(gateway: RunningGateway, ca: Pki) -> Iterator[Callable[[str], httpx.Response]]:
    """GET a Flink path through the gateway with a bearer token (one client, safe to share between threads)."""
    with client(ca) as http:

        def get(token: str) -> httpx.Response:
            return http.get(gateway.url + PATH, headers={"Authorization": f"Bearer {token}"})

        yield get


def viewer(keys: RotatingProvider, kid: str, sub: str = "vera") -> str:
    return keys.sign(kid, sub, CLIENT, "ads-viewers")


def reasons(gateway: RunningGateway) -> list[str]:
    return [r["reason"] for r in gateway.audit() if r.get("allowed") is False]


def read_gaps(keys: RotatingProvider) -> list[float]:
    times = keys.read_times()
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("keep_old", [True, False], ids=["old-key-kept", "old-key-dropped"])
def test_a_new_signing_key_is_taken_up_and_a_dropped_one_refused_without_a_restart(
    keys: RotatingProvider, gateway: RunningGateway, call: Callable[[str], httpx.Response], keep_old: bool
) -> None:
    (old,) = keys.published
    before = viewer(keys, old)
    assert call(before).status_code == 200
    assert keys.jwks_reads == 1  # at start

    new = keys.new_key()
    keys.publish(*([old, new] if keep_old else [new]))
    # The gateway read the JWKS at start, under INTERVAL ago: the token waits for the next read, not a 401.
    after = call(viewer(keys, new))
    assert after.status_code == 200, after.text
    assert keys.jwks_reads == 2
    assert call(viewer(keys, new, "vera-again")).status_code == 200
    assert keys.jwks_reads == 2  # a known key needs no read

    # The token let in before the rotation, and a new one signed with the old key.
    expected = 200 if keep_old else 401
    assert call(before).status_code == expected
    assert call(viewer(keys, old, "vera-old-key")).status_code == expected
    if not keep_old:
        assert reasons(gateway)[-1] == f"token rejected: signed with key {old!r}, which the provider does not publish"


def test_made_up_key_ids_read_the_jwks_once_per_interval_and_do_not_hold_up_a_new_key(
    keys: RotatingProvider, gateway: RunningGateway, call: Callable[[str], httpx.Response]
) -> None:
    (known,) = keys.published
    forger = keys.new_key()  # never published; each forged token names a kid of its own
    flood_ends, under_way = threading.Event(), threading.Event()
    statuses: list[int] = []
    lock = threading.Lock()

    def flood(worker: int) -> None:
        n = 0
        while not flood_ends.is_set():
            n += 1
            forged = keys.sign(forger, "mallory", CLIENT, "flink-admins", naming=f"made-up-{worker}-{n}")
            status = call(forged).status_code
            with lock:
                statuses.append(status)
                if len(statuses) >= 16:
                    under_way.set()

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        floods = [pool.submit(flood, worker) for worker in range(8)]
        try:
            # The flood is under way (its tokens refused after reads), a known key is let in ...
            assert under_way.wait(30)
            assert call(viewer(keys, known)).status_code == 200
            # ... and the provider's new key within about one interval, the flood still on.
            new = keys.new_key()
            keys.publish(known, new)
            t0 = time.monotonic()
            assert call(viewer(keys, new)).status_code == 200
            assert time.monotonic() - t0 < 2 * INTERVAL + 1
        finally:
            flood_ends.set()
            for done in floods:
                done.result(timeout=60)
    elapsed = time.monotonic() - started

    assert set(statuses) == {401}, "a forged token got through"
    assert len(statuses) > 3 * keys.jwks_reads, (len(statuses), keys.jwks_reads)
    # Reads (the one at start included) are INTERVAL apart at least, a few ms of loopback aside.
    assert min(read_gaps(keys)) >= INTERVAL - 0.05, read_gaps(keys)
    assert keys.jwks_reads <= 2 + elapsed / INTERVAL
    assert all("which the provider does not publish" in r for r in reasons(gateway))


@pytest.mark.parametrize("outage", ["503", "not-a-jwks"])
def test_while_the_jwks_is_down_known_keys_keep_working(
    keys: RotatingProvider, gateway: RunningGateway, call: Callable[[str], httpx.Response], outage: Outage
) -> None:
    (known,) = keys.published
    unknown = keys.new_key()
    with keys.outage(outage):
        # A token naming a key not known yet makes the gateway try (and fail): refused, and said why.
        refused = call(viewer(keys, unknown))
        assert refused.status_code == 401, refused.text
        assert keys.jwks_reads == 2
        assert "the provider's keys could not be read again" in reasons(gateway)[-1]
        # The failed read did not wipe the keys: a token never seen before, signed with a known one, is let in.
        assert call(viewer(keys, known, "vera-during-outage")).status_code == 200
        # A failed read counts against the interval: more unknown kids, at once, wait for one more read.
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            forged = [keys.sign(unknown, "mallory", CLIENT, naming=f"made-up-{n}") for n in range(6)]
            assert set(pool.map(lambda token: call(token).status_code, forged)) == {401}
        assert keys.jwks_reads <= 3 + (time.monotonic() - started) / INTERVAL
        assert min(read_gaps(keys)) >= INTERVAL - 0.05, read_gaps(keys)
    # The endpoint is back: the key the provider has since published is taken up.
    keys.publish(known, unknown)
    assert call(viewer(keys, unknown)).status_code == 200
    assert call(viewer(keys, known, "vera-after")).status_code == 200
