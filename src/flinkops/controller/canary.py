"""Canary resources: the reference operator's health probe of its own control loop.

A FlinkDeployment or FlinkSessionJob labelled ``flink.apache.org/canary: "true"`` has no real spec. The
controller reconciles it like any resource but deploys nothing: a pass records that the canary's generation was
reconciled (``status.observedGeneration``) and comes back every ``timeout / 3``. ``CanaryMonitor`` remembers
when each canary was last reconciled and at which generation; a canary not reconciled within ``timeout``
(``kubernetes.operator.health.canary.resource.timeout``, 1 min as in the reference), or whose newer generation
(a spec change a watch delivered) waits longer than that, is reported by ``problems``, and the operator's
``/healthz`` then answers 503, so Kubernetes restarts an operator whose loop has stalled.

Unlike the reference, the monitor does not rewrite the canary's spec to provoke a change (that fought GitOps
tools over the canary's metadata); a spec change made by anyone is checked the same way.

Called by: ``Controller.reconcile`` (``reconciled``, ``forget``), the operator (``seen`` from its watch cache,
``problems`` for ``/healthz``). Thread-safe: the operator's shards share one monitor. Time is passed in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flinkops.ports import ResourceKey

__all__ = ["CANARY_TIMEOUT_KEY", "DEFAULT_CANARY_TIMEOUT", "CanaryMonitor"]

#: The reference operator's option for how soon a canary must be reconciled.
CANARY_TIMEOUT_KEY = "kubernetes.operator.health.canary.resource.timeout"
DEFAULT_CANARY_TIMEOUT = 60.0


@dataclass
class _Canary:
    reconciled_generation: int | None = None
    reconciled_at: float | None = None
    #: the newest generation known to exist (a watch event or the store), and since when it waits
    wanted_generation: int | None = None
    waiting_since: float | None = None


class CanaryMonitor:
    def __init__(self, timeout: float = DEFAULT_CANARY_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._canaries: dict[ResourceKey, _Canary] = {}

    @property
    def interval(self) -> float:
        """How often a canary is reconciled when nothing changes: well within the timeout."""
        return self.timeout / 3

    def reconciled(self, key: ResourceKey, generation: int, now: float) -> None:
        with self._lock:
            canary = self._canaries.setdefault(key, _Canary())
            canary.reconciled_generation, canary.reconciled_at = generation, now
            if canary.wanted_generation is not None and canary.wanted_generation <= generation:
                canary.wanted_generation = canary.waiting_since = None

    def seen(self, key: ResourceKey, generation: int, now: float) -> None:
        """A canary exists at ``generation``: from then on it must be reconciled at it within the timeout."""
        with self._lock:
            canary = self._canaries.setdefault(key, _Canary())
            if canary.reconciled_generation is not None and generation <= canary.reconciled_generation:
                return
            if canary.wanted_generation is None or generation > canary.wanted_generation:
                canary.wanted_generation = generation
                if canary.waiting_since is None:
                    canary.waiting_since = now

    def forget(self, key: ResourceKey) -> None:
        """The canary was deleted."""
        with self._lock:
            self._canaries.pop(key, None)

    def problems(self, now: float) -> list[str]:
        """One line per canary the loop has not kept up with; empty when healthy (or when there are none)."""
        found: list[str] = []
        with self._lock:
            for key in sorted(self._canaries, key=lambda k: (k.kind, k.namespace, k.name)):
                canary = self._canaries[key]
                label = f"{key.kind} {key.namespace}/{key.name}"
                if canary.waiting_since is not None and now - canary.waiting_since > self.timeout:
                    waited = now - canary.waiting_since
                    found.append(f"{label}: generation {canary.wanted_generation} not reconciled for {waited:.0f}s")
                elif canary.reconciled_at is not None and now - canary.reconciled_at > self.timeout:
                    found.append(f"{label}: not reconciled for {now - canary.reconciled_at:.0f}s")
        return found
