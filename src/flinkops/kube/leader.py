"""Leader election on a coordination.k8s.io/v1 Lease, so only one operator replica acts at a time.

A candidate holds the Lease while it renews it every ``retry_period`` seconds. Another candidate takes it over
only when the holder released it (empty ``holderIdentity``) or when the Lease has not changed for
``lease_duration`` seconds *as measured on the candidate's own clock* since it last saw a change: clocks of
different machines are never compared. Every write carries the resourceVersion read, so two candidates can never
both win. A leader that cannot renew within ``renew_deadline`` stops acting (``lost`` is set) before another
candidate may take over (``renew_deadline`` < ``lease_duration``); the operator then exits so it restarts clean.

Called by: the operator process (``controller.operator``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flinkops.errors import Conflict, FlinkopsError
from flinkops.kube.client import KubeClient, object_path

__all__ = ["LeaderElector", "LeaseSettings"]

log = logging.getLogger("flinkops.leader")


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str = "flinkops-operator"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        settings: LeaseSettings,
        identity: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.retry_period < settings.renew_deadline < settings.lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")
        self.client, self.settings, self.identity = client, settings, identity
        self.monotonic = monotonic
        self.path = object_path("coordination.k8s.io/v1", "leases", settings.namespace, settings.name)
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self.is_leader = False
        self.lost = threading.Event()

    # ------------------------------------------------------------------ one attempt

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards."""
        now = self.monotonic()
        try:
            lease = self.client.get(self.path)
            if lease is None:
                self.client.create(self.path.rsplit("/", 1)[0], self._lease_body(None, transitions=0))
                return self._won(now, "created the lease")
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            if holder == self.identity:
                self.client.replace(self.path, self._lease_body(lease, transitions=spec.get("leaseTransitions") or 0))
                return self._won(now, "renewed")
            expired = now - self._observed_at > float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
            if holder and not expired:
                self.is_leader = False
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + 1
            self.client.replace(self.path, self._lease_body(lease, transitions=transitions, acquired=True))
            return self._won(now, f"took over from {holder or 'nobody (released)'}")
        except Conflict:
            return self._kept_if_recent(now)  # another candidate wrote first: look again next time
        except FlinkopsError as exc:
            log.warning("leader election: %s", exc)
            return self._kept_if_recent(now)

    def _kept_if_recent(self, now: float) -> bool:
        if self.is_leader and now - self._renewed_at > self.settings.renew_deadline:
            log.error("leader election: could not renew the lease for %.1fs; stepping down", now - self._renewed_at)
            self.is_leader = False
            self.lost.set()
        return self.is_leader

    def _won(self, now: float, how: str) -> bool:
        if not self.is_leader:
            log.info("leader election: %s is the leader (%s)", self.identity, how)
        self.is_leader = True
        self._renewed_at = now
        return True

    def _lease_body(self, lease: dict[str, Any] | None, *, transitions: int, acquired: bool = False) -> dict[str, Any]:
        now = _micro_time()
        old_spec = (lease or {}).get("spec") or {}
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.settings.lease_duration),
            "acquireTime": now if (acquired or lease is None) else old_spec.get("acquireTime", now),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        metadata: dict[str, Any] = {"name": self.settings.name, "namespace": self.settings.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    # ------------------------------------------------------------------ loops

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this candidate leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            stop.wait(self.settings.retry_period)
        return False

    def keep_renewing(self, stop: threading.Event) -> threading.Thread:
        """Renew in a daemon thread until ``stop``; sets ``lost`` if leadership cannot be kept."""

        def renew() -> None:
            while not stop.wait(self.settings.retry_period):
                if not self.try_acquire_or_renew():
                    self.lost.set()
                    return

        thread = threading.Thread(target=renew, name="lease renewal", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the Lease up at once (a clean shutdown), so a standby need not wait for it to expire."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = self.client.get(self.path)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = self._lease_body(lease, transitions=(lease.get("spec") or {}).get("leaseTransitions") or 0)
            body["spec"]["holderIdentity"] = ""
            body["spec"]["leaseDurationSeconds"] = 1
            self.client.replace(self.path, body)
            log.info("leader election: %s released the lease", self.identity)
        except FlinkopsError as exc:
            log.warning("leader election: could not release the lease: %s", exc)
