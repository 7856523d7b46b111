"""The real clock. Only the processes that host a controller (the daemon, the operator) and adapters use it;
the controller gets a ``Clock`` injected, and behaviour tests a virtual one."""

from __future__ import annotations

import time

__all__ = ["SystemClock"]


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
