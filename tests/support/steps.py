"""Named steps for integration tests that chain several scenarios on one deployment.

A chained test (one Flink start serving, say, a JobManager SIGKILL and then a TaskManager SIGKILL) must still say
which scenario broke. :class:`Steps` does that: each step is a ``with`` block that prints when it starts (seconds
since the test began; seen with ``pytest -s``) and turns any assertion or timeout inside it into an
``AssertionError`` that opens with the step's name, the original message kept after it::

    steps = Steps("JobManager SIGKILL, then TaskManager SIGKILL")
    with steps("JobManager SIGKILL: a new job from the latest checkpoint"):
        ...

Called by: tests/integration/test_stateful_lifecycle.py. Invariant: a failure inside a step always names it, and
the printed times add up to the test's own duration (one clock, started with the test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Steps"]


class Steps:
    """The steps of one chained test; each prints the time it started."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = self.elapsed()
        print(f"\n[{began:6.1f} s] {self.test} / {name}", flush=True)
        try:
            yield
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"step '{name}' of '{self.test}' failed after {self.elapsed():.0f} s: {exc}") from exc
