"""A virtual clock for behaviour tests: time moves only when a test (or a fake's ``sleep``) says so.

``ManualClock`` implements the ``flinkops.ports.Clock`` port. Fakes that model something happening over time
(the in-memory Flink's checkpoints, savepoints that take a moment) subscribe with ``on_advance`` and catch up to
the new time whenever the clock moves, so everything they write (checkpoints in fake storage) is in place
before the next reconcile pass looks.

Called by: ``fakes.world.World`` and any test that needs time without waiting for it.

Invariant: time never goes backwards; listeners see every advance in order.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ManualClock"]

#: 2026-01-01T00:00:00Z: far from the epoch, so "0 ms" never looks like a real moment.
DEFAULT_START = 1_767_225_600.0


class ManualClock:
    """Virtual time in seconds since the epoch. ``sleep`` advances it instead of blocking."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self._now

    def now_ms(self) -> int:
        return int(self._now * 1000)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are ignored) and tell every listener."""
        if seconds <= 0:
            return
        self._now += seconds
        for listener in list(self._listeners):
            listener(self._now)

    def advance_to(self, moment: float) -> None:
        """Move time forward to ``moment`` (no-op when it already passed)."""
        self.advance(moment - self._now)

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(now)`` after every advance."""
        self._listeners.append(listener)
