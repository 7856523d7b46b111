"""One controller per flinkops home, however many things start one at once: several `flinkops apply` (or an
Airflow scheduler's tasks) applying at the same moment must not each start a controller, and a second
`flinkops controller run` in a terminal refuses to start beside a running one. Two controllers on one home would
each deploy the same job (a batch job ran twice when three Airflow tasks applied at once)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flinkops.procs import same_process, start_ticks
from flinkops.wiring.daemon import daemon_state, start_daemon, stop_daemon

pytestmark = pytest.mark.integration


def controllers_of(home: Path) -> list[int]:
    """Live `flinkops controller run` processes whose working directory is ``home``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ours = b"controller" in cmdline and b"run" in cmdline and Path(proc / "cwd").resolve() == home.resolve()
            if ours and same_process(int(proc.name), start_ticks(int(proc.name))):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def test_starters_at_the_same_moment_get_one_controller_and_a_second_refuses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    states = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            states.append(start_daemon(home))
        except BaseException as exc:
            errors.append(exc)

    starters = [threading.Thread(target=start) for _ in range(4)]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join(60)
    try:
        assert not errors, errors
        assert len({s.pid for s in states}) == 1 and states[0].running, states
        assert controllers_of(home) == [states[0].pid]
        second = subprocess.run(
            [sys.executable, "-m", "flinkops", "controller", "run"],
            env={**__import__("os").environ, "FLINKOPS_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "another flinkops controller already runs" in second.stderr, second.stderr
        assert daemon_state(home).pid == states[0].pid
    finally:
        stop_daemon(home)
    assert controllers_of(home) == []
