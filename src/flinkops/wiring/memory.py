"""The operator process's C heap under glibc: a bound on malloc arenas, and free memory handed back to the kernel.

glibc's malloc gives threads arenas of their own (up to eight per core), and keeps memory a thread freed in its
arena for later. The operator's threads (informers, reconcile workers, lease renewal, metrics) each parse API
responses and render manifests in bursts, so each arena grows to its own burst's high-water mark and stays there:
most of what the process's resident size gains with many deployments is free memory held this way, not objects
in use. Two glibc calls, made through ``ctypes`` (the standard library has no binding for them), bound that:

* :func:`limit_arenas` (``mallopt(M_ARENA_MAX, n)``), before the threads start: the threads share ``n`` arenas,
  so the free memory of one burst serves the next one on another thread. A ``MALLOC_ARENA_MAX`` in the
  environment (an operator's own choice in the chart's ``env``) wins: it is left alone.
* :func:`release_free_memory` (``malloc_trim(0)``): hands the whole free pages inside every arena back to the
  kernel; the operator calls it every :data:`TRIM_INTERVAL` seconds (it takes a few milliseconds).

Elsewhere (musl, macOS) both are no-ops returning False.

Called by: ``flinkops operator run`` (``cli.operator``) and the operator's loop (``wiring.operator``).
Invariant: nothing here changes what the process does, only how much memory it keeps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

__all__ = ["OPERATOR_ARENAS", "TRIM_INTERVAL", "limit_arenas", "release_free_memory"]

log = logging.getLogger("flinkops.operator")

_M_ARENA_MAX = -8  # from glibc's malloc.h
#: Arenas the operator's threads share: contention is low (passes mostly wait for the API server, and hold the GIL
#: while they allocate), and each extra arena keeps its own free memory.
OPERATOR_ARENAS = 2
#: Seconds between two ``malloc_trim`` calls of the operator's loop.
TRIM_INTERVAL = 10.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # gnu_get_libc_version: only glibc has it (musl has a mallopt that does nothing)
    return libc if all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")) else None


def limit_arenas(count: int = OPERATOR_ARENAS) -> bool:
    """Let the threads started from now on share ``count`` malloc arenas, unless ``MALLOC_ARENA_MAX`` is set;
    True when the limit was set here."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    done = bool(libc.mallopt(_M_ARENA_MAX, count))
    if not done:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", count)
    return done


def release_free_memory() -> bool:
    """Hand the free pages of every malloc arena back to the kernel; True when glibc released some."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
