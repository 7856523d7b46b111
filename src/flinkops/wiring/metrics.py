"""The operator's Prometheus metrics and its HTTP endpoint (``/metrics``, ``/healthz``, ``/readyz``).

Metrics are kept in plain Python objects and rendered in the Prometheus text exposition format on request, so
the operator needs no metrics library:

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

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["MetricsServer", "OperatorMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()
    )
    return "{" + inner + "}" if inner else ""


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
        out: list[str] = []
        with self._lock:
            out += [
                "# HELP flinkops_reconcile_total Reconcile passes by outcome.",
                "# TYPE flinkops_reconcile_total counter",
            ]
            for (kind, result), n in sorted(self.reconciles.items()):
                out.append(f"flinkops_reconcile_total{_labels(kind=kind, result=result)} {n}")
            out += [
                "# HELP flinkops_reconcile_errors_total Failed passes by error type.",
                "# TYPE flinkops_reconcile_errors_total counter",
            ]
            for (kind, error), n in sorted(self.errors.items()):
                out.append(f"flinkops_reconcile_errors_total{_labels(kind=kind, error=error)} {n}")
            out += [
                "# HELP flinkops_reconcile_duration_seconds Duration of one pass.",
                "# TYPE flinkops_reconcile_duration_seconds histogram",
            ]
            for kind, buckets in sorted(self._hist.items()):
                for bound, n in zip(_BUCKETS, buckets, strict=True):
                    out.append(f"flinkops_reconcile_duration_seconds_bucket{_labels(kind=kind, le=str(bound))} {n}")
                inf = _labels(kind=kind, le="+Inf")
                out.append(f"flinkops_reconcile_duration_seconds_bucket{inf} {self._hist_count[kind]}")
                out.append(f"flinkops_reconcile_duration_seconds_sum{_labels(kind=kind)} {self._hist_sum[kind]:.6f}")
                out.append(f"flinkops_reconcile_duration_seconds_count{_labels(kind=kind)} {self._hist_count[kind]}")
            out += ["# HELP flinkops_resources Resources by lifecycle state.", "# TYPE flinkops_resources gauge"]
            for kind, states in sorted(self.lifecycle.items()):
                for state, n in sorted(Counter(states.values()).items()):
                    out.append(f"flinkops_resources{_labels(kind=kind, lifecycle_state=state)} {n}")
            out += ["# HELP flinkops_leader 1 while this replica is the leader.", "# TYPE flinkops_leader gauge"]
            out.append(f"flinkops_leader {1 if self.leader else 0}")
        out += [
            "# HELP flinkops_canaries_unhealthy Canary resources not reconciled within their timeout.",
            "# TYPE flinkops_canaries_unhealthy gauge",
            f"flinkops_canaries_unhealthy {len(self.canary_problems())}",
        ]
        out += [
            "# HELP flinkops_kube_requests_total API server requests by verb and HTTP status (0: no answer).",
            "# TYPE flinkops_kube_requests_total counter",
        ]
        for (verb, code), n in sorted(self.kube_requests().items()):
            out.append(f"flinkops_kube_requests_total{_labels(verb=verb, code=str(code))} {n}")
        return "\n".join(out) + "\n"


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
                    self._answer(200, owner.metrics.render(), "text/plain; version=0.0.4")
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
