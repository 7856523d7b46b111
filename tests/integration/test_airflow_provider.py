"""The Airflow provider's suite (tests/airflow) on a real Airflow 3, run from the main test session.

Those tests import Airflow, so they run in Airflow's own environment (``./.venv-airflow``, made by
``scripts/prefetch.py`` for `make test`, or ``.venv/bin/python -m flinkops.dev.airflow``), in a pytest of their
own; this test starts it and fails with its report. Run from here, the suite shares the machine with the others
the way every module does (one of the two workers), instead of adding its minutes after them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv-airflow" / "bin" / "python"


def test_the_airflow_provider_suite_passes_on_a_real_airflow() -> None:
    assert PYTHON.is_file(), (
        f"{PYTHON} is missing: `make test` makes it (scripts/prefetch.py); by hand: "
        ".venv/bin/python -m flinkops.dev.airflow"
    )
    # Not this session's worker settings: the suite is a pytest of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    started = time.monotonic()
    done = subprocess.run(
        [
            str(PYTHON), "-m", "pytest", "tests/airflow", "-q", "-p", "no:cacheprovider",
            "-o", "asyncio_default_fixture_loop_scope=function", "--durations=8",
        ],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    report = done.stdout[-12000:] + ("\n" + done.stderr[-4000:] if done.returncode else "")
    print(f"\ntests/airflow in {time.monotonic() - started:.0f} s (exit {done.returncode}):\n{report}", file=sys.stderr)
    assert done.returncode == 0, report
