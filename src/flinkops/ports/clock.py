"""Time as the controller sees it: injected, so behaviour tests run on a virtual clock (``tests/fakes``) and
the processes use ``flinkops.clock.SystemClock``."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Clock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...
