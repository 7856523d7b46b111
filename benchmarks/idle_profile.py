"""Where the controller's idle CPU goes: the daemon's loop under cProfile, in this process, against real Flink.

``idle_cpu.py`` says how much CPU an idle daemon costs; this says where it goes. It starts the daemon, applies
``--count`` STABLE deployments (the same small VerifierJob clusters as ``idle_cpu.py``) and waits until they are
stable, then stops the daemon (the Flink clusters keep running) and runs the very same loop, built by
``wiring.local``, in this process: ``--warmup`` seconds unprofiled (the new controller's first pass over every
resource), then ``--seconds`` under cProfile. It prints the loop's CPU share without the profiler's overhead
(measured in a separate unprofiled window of the same length), the number of passes, Flink REST calls and
status writes, and the functions that cost the most. The deployments are deleted at the end.

Run: ``.venv/bin/python benchmarks/idle_profile.py [--count 1] [--seconds 60]``; with ``--home PATH`` it profiles
the deployments already STABLE in that flinkops home (stop its daemon first) and creates and deletes nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from idle_cpu import deployment, flinkops  # noqa: E402

from flinkops.clock import SystemClock  # noqa: E402
from flinkops.controller import run_loop  # noqa: E402
from flinkops.flink.rest import FlinkRestClient  # noqa: E402
from flinkops.stores.sqlite import SqliteStore  # noqa: E402
from flinkops.wiring.local import build_controller  # noqa: E402
from support.testjobs import testjobs_jar  # noqa: E402

CALLS: Counter[str] = Counter()


def _count(owner: type, name: str, label: str) -> None:
    """Count calls of ``owner.name`` under ``label`` (the method keeps working as before)."""
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        CALLS[label] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


def _window(home: Path, seconds: float, profiler: cProfile.Profile | None) -> float:
    """Run the daemon's loop for ``seconds``; returns the CPU it used as a percentage of one core."""
    controller, store = build_controller(home)
    warm_until = time.monotonic() + 12.0  # the first pass over every resource (a fresh controller's) is not idle
    measuring: dict[str, float] = {}

    def should_stop() -> bool:
        now = time.monotonic()
        if not measuring and now >= warm_until:
            CALLS.clear()
            measuring.update(wall=now, cpu=time.process_time())
            if profiler is not None:
                profiler.enable()
        return bool(measuring) and now - measuring["wall"] >= seconds

    run_loop(controller, store, SystemClock(), should_stop)
    if profiler is not None:
        profiler.disable()
    return 100 * (time.process_time() - measuring["cpu"]) / (time.monotonic() - measuring["wall"])


def _report(home: Path, args: argparse.Namespace) -> None:
    plain = _window(home, args.seconds, None)
    print(f"STABLE deployment(s), loop in-process: {plain:5.2f} % of one core (no profiler)")
    print(", ".join(f"{label}: {n}" for label, n in sorted(CALLS.items())), f"in {args.seconds:.0f} s")

    profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for Flink costs nothing
    profiled = _window(home, args.seconds, profiler)
    print(f"under cProfile: {profiled:5.2f} % of one core")
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(args.top)
        print(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--home", type=Path, help="profile this home's running deployments (its daemon stopped)")
    args = parser.parse_args()
    _count(FlinkRestClient, "_request", "Flink REST requests")
    _count(FlinkRestClient, "__init__", "Flink REST clients built")
    _count(SqliteStore, "update_status", "status writes")
    _count(SqliteStore, "record_event", "events recorded")
    if args.home is not None:
        _report(args.home, args)
        return

    base = Path(tempfile.mkdtemp(prefix="flinkops-profile-"))
    home = base / "home"
    os.environ["FLINKOPS_HOME"] = str(home)
    jar = testjobs_jar()
    names = [f"idle-{i}" for i in range(args.count)]
    try:
        for name in names:
            flinkops(home, "apply", "-f", str(deployment(base, name, jar)))
        for name in names:
            flinkops(home, "apply", "-f", str(base / f"{name}.yaml"), "--wait", "--timeout", "600")
        flinkops(home, "controller", "stop")
        _report(home, args)
    finally:
        for name in names:
            try:
                flinkops(home, "delete", name)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
        flinkops(home, "controller", "stop")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
