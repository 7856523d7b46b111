"""The operator's Prometheus metrics and its HTTP endpoint (``/metrics``, ``/healthz``, ``/readyz``).

The loop records what happened in plain Python objects (cheap under its lock); at each scrape a custom
``prometheus_client`` collector turns them into metric families and the library writes the exposition format:

* ``flinkops_reconcile_total{kind,result}``: passes by outcome (``ok``, ``conflict``, ``error``, ``invalid``);
* ``flinkops_reconcile_duration_seconds{kind}``: a histogram of pass durations;
* ``flinkops_reconcile_errors_total{kind,error}``: failures by error type;
* ``flinkops_resources{kind,lifecycle_state}``: resources by lifecycle state, as last seen;
* ``flinkops_kube_requests_total{verb,code}``: API server calls, taken from the client at scrape time;
* ``flinkops_leader``: 1 while this replica leads, else 0;
* ``flinkops_canaries_unhealthy``: canary resources not reconciled within their timeout.

``/healthz`` answers 200 while the main loop (or, on a standby, the election loop) has ticked within the
liveness window and every canary resource was reconciled in time (``controller.canary``; the reference's health
probe does the same); ``/readyz`` answers 200 once the resource caches are synced, or at once on a standby (a standby
is healthy, just not leading).

Called by: ``controller.operator``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from flinkops.controller.loop import ReconcileResult
from flinkops.ports import ResourceKey, ResourceStore

log = logging.getLogger("flinkops.metrics")

__all__ = ["MetricsServer", "OperatorMetrics", "local_metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class OperatorMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reconciles: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: dict[str, float] = {}
        self._hist_count: Counter[str] = Counter()
        self.lifecycle: dict[str, dict[str, str]] = {}  # kind -> name -> state
        self.leader = False
        self.last_tick = time.monotonic()
        self.ready = False
        self.kube_requests: Callable[[], dict[tuple[str, int], int]] = dict
        #: canary resources the loop has not kept up with (``controller.canary``), one line each
        self.canary_problems: Callable[[], list[str]] = list
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def observe_reconcile(self, kind: str, result: str, seconds: float, error: str | None = None) -> None:
        with self._lock:
            self.reconciles[(kind, result)] += 1
            if error:
                self.errors[(kind, error)] += 1
            buckets = self._hist.setdefault(kind, [0] * len(_BUCKETS))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._hist_sum[kind] = self._hist_sum.get(kind, 0.0) + seconds
            self._hist_count[kind] += 1

    def set_lifecycle(self, kind: str, name: str, state: str | None) -> None:
        with self._lock:
            states = self.lifecycle.setdefault(kind, {})
            if state is None:
                states.pop(name, None)
            else:
                states[name] = state

    def render(self) -> str:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self._registry).decode()

    def collect(self) -> Iterator[Metric]:
        """The families as they are now (``prometheus_client``'s collector protocol; called at each scrape)."""
        with self._lock:
            reconciles = CounterMetricFamily(
                "flinkops_reconcile", "Reconcile passes by outcome.", labels=["kind", "result"]
            )
            for (kind, result), n in sorted(self.reconciles.items()):
                reconciles.add_metric([kind, result], n)
            errors = CounterMetricFamily(
                "flinkops_reconcile_errors", "Failed passes by error type.", labels=["kind", "error"]
            )
            for (kind, error), n in sorted(self.errors.items()):
                errors.add_metric([kind, error], n)
            durations = HistogramMetricFamily(
                "flinkops_reconcile_duration_seconds", "Duration of one pass.", labels=["kind"]
            )
            for kind, counts in sorted(self._hist.items()):
                buckets = [(str(bound), float(n)) for bound, n in zip(_BUCKETS, counts, strict=True)]
                buckets.append(("+Inf", float(self._hist_count[kind])))
                durations.add_metric([kind], buckets, self._hist_sum[kind])
            resources = GaugeMetricFamily(
                "flinkops_resources", "Resources by lifecycle state.", labels=["kind", "lifecycle_state"]
            )
            for kind, states in sorted(self.lifecycle.items()):
                for state, n in sorted(Counter(states.values()).items()):
                    resources.add_metric([kind, state], n)
            leader = GaugeMetricFamily("flinkops_leader", "1 while this replica is the leader.", value=int(self.leader))
        yield from (reconciles, errors, durations, resources, leader)
        yield GaugeMetricFamily(
            "flinkops_canaries_unhealthy",
            "Canary resources not reconciled within their timeout.",
            value=len(self.canary_problems()),
        )
        requests = CounterMetricFamily(
            "flinkops_kube_requests",
            "API server requests by verb and HTTP status (0: no answer).",
            labels=["verb", "code"],
        )
        for (verb, code), n in sorted(self.kube_requests().items()):
            requests.add_metric([verb, str(code)], n)
        yield requests


class MetricsServer:
    """Serves the metrics and probes on ``address:port`` in a daemon thread (port 0 picks a free one)."""

    def __init__(self, metrics: OperatorMetrics, address: str, port: int, *, liveness_window: float = 60.0) -> None:
        self.metrics = metrics
        self.liveness_window = liveness_window
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, owner.metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    age = time.monotonic() - owner.metrics.last_tick
                    problems = [] if age <= owner.liveness_window else [f"main loop stalled for {age:.0f}s"]
                    problems += owner.metrics.canary_problems()
                    self._answer(503 if problems else 200, "".join(f"{p}\n" for p in problems) or "ok\n")
                elif path == "/readyz":
                    ok = owner.metrics.ready
                    self._answer(200 if ok else 503, "ok\n" if ok else "caches not synced\n")
                else:
                    self._answer(404, "not found\n")

            def _answer(self, code: int, body: str, content_type: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the operator's own log

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def local_metrics(
    store: ResourceStore, port: int | None
) -> Iterator[Callable[[ResourceKey, ReconcileResult, float], None] | None]:
    """While the local controller runs: with ``port``, the operator's metrics and probes served on 127.0.0.1, fed by
    each pass of the loop (yields the loop's ``on_pass``); without, nothing (yields None)."""
    if port is None:
        yield None
        return
    metrics = OperatorMetrics()
    metrics.leader = metrics.ready = True  # one controller per home: it always leads
    server = MetricsServer(metrics, "127.0.0.1", port).start()
    log.info("metrics on http://127.0.0.1:%s/metrics", server.port)

    def on_pass(key: ResourceKey, result: ReconcileResult, seconds: float) -> None:
        metrics.tick()
        outcome = "error" if result.error else "ok"
        metrics.observe_reconcile(key.kind, outcome, seconds, result.error)
        current = store.get(key)
        state = current.status.lifecycle_state if current is not None and current.status is not None else None
        name = f"{key.namespace}/{key.name}"
        metrics.set_lifecycle(key.kind, name, (state.value if state is not None else "CREATED") if current else None)

    try:
        yield on_pass
    finally:
        server.stop()
